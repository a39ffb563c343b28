"""Activation detection from isolated stems (the paper's MedleyDB method)."""

from __future__ import annotations

import numpy as np
import pytest

from ugosa_cli.errors import InputError
from ugosa_cli.stem_activity import (
    activation_confidence,
    butter2_lowpass,
    detect_activations,
    filtfilt,
    tidy_regions,
    window_length,
)

RATE = 8000
SECONDS = 30
SILENT = {"drums": (5.0, 10.0), "bass": (12.0, 18.3), "other": (20.1, 25.0), "vocals": (2.5, 7.0)}


def synth_stems(fade: float = 0.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Four stereo stems of different character, each silenced over its SILENT section.

    With ``fade``, the gain ramps linearly over ``fade`` seconds centred on each border of the section.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(RATE * SECONDS) / RATE
    raw = {
        "drums": 0.3 * rng.standard_normal(t.size) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)),  # pulsing noise
        "bass": 0.4 * np.sin(2 * np.pi * 55 * t),
        "other": 0.2 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size),
        "vocals": 0.3 * np.sin(2 * np.pi * 330 * t) * (1 + 0.3 * np.sin(2 * np.pi * 5 * t)),
    }
    stems = {}
    for name, signal in raw.items():
        start, end = SILENT[name]
        gain = np.ones_like(t)
        if fade:
            gain = np.clip(np.maximum(start - t, t - end) / fade + 0.5, 0, 1)
        else:
            gain[(t >= start) & (t < end)] = 0
        stems[name] = np.stack([signal * gain, 0.7 * signal * gain])
    return stems


@pytest.mark.parametrize("fade", [0.0, 0.2])
def test_finds_known_silent_sections_within_a_tenth_of_a_second(fade):
    labels = detect_activations(synth_stems(fade), RATE)
    assert labels.duration == SECONDS and labels.unconstrained == ()
    for name, (start, end) in SILENT.items():
        start, end = start + fade / 2, end - fade / 2  # where the stem is fully silent
        spans = labels.regions[name]
        assert len(spans) == 2, (name, spans)
        (first_start, silence_start), (silence_end, last_end) = spans
        assert first_start == 0.0 and last_end == SECONDS
        assert abs(silence_start - start) <= 0.1, (name, silence_start)
        assert abs(silence_end - end) <= 0.1, (name, silence_end)


def test_without_sharpening_the_paper_activations_spread_past_the_borders():
    labels = detect_activations(synth_stems(), RATE, sharpen=False, min_region=0, min_gap=0)
    for name, (start, end) in SILENT.items():
        (_, silence_start), (silence_end, _) = labels.regions[name]
        assert start <= silence_start < start + 1.0
        assert end - 1.0 < silence_end <= end


def test_missing_stems_are_unconstrained_and_mono_stems_work():
    stems = {name: stem[0] for name, stem in synth_stems().items() if name != "bass"}
    labels = detect_activations(stems, RATE)
    assert labels.unconstrained == ("bass",)
    assert any("bass" in w for w in labels.warnings)
    assert len(labels.regions["vocals"]) == 2


def test_a_silent_stem_is_silent_throughout():
    stems = synth_stems()
    stems["other"] = np.zeros_like(stems["other"])
    assert detect_activations(stems, RATE).regions["other"] == ()


def test_confidence_is_in_unit_range_per_channel():
    names, confidence = activation_confidence(synth_stems(), RATE)
    hop = window_length(RATE) // 2
    assert names == ["drums", "bass", "other", "vocals"]
    assert confidence.shape == (4, 2, -(-RATE * SECONDS // hop) + 1)
    assert confidence.min() >= 0 and confidence.max() <= 1


def test_window_keeps_the_papers_duration_at_any_rate():
    assert window_length(44100) == 4096
    assert window_length(22050) == 2048
    assert window_length(8000) == 2 * round(2048 * 8000 / 44100)


def test_zero_phase_butterworth_matches_scipy():
    signal = pytest.importorskip("scipy.signal")
    b, a = butter2_lowpass(0.075)
    ref_b, ref_a = signal.butter(2, 0.075)
    np.testing.assert_allclose(b, ref_b, atol=1e-12)
    np.testing.assert_allclose(a, ref_a, atol=1e-12)
    x = np.random.default_rng(1).standard_normal((3, 300)).cumsum(axis=1)
    np.testing.assert_allclose(filtfilt(b, a, x), signal.filtfilt(ref_b, ref_a, x, axis=1), atol=1e-9)


def test_tidy_regions_fills_short_gaps_and_drops_short_regions():
    regions = [(0.3, 2.0), (2.5, 4.0), (6.0, 6.2), (8.0, 9.6)]
    assert tidy_regions(regions, 10.0, min_region=0.5, min_gap=1.0) == [(0.0, 4.0), (8.0, 10.0)]
    assert tidy_regions(regions, 10.0, min_region=0, min_gap=0) == regions


def test_bad_inputs_are_input_errors():
    with pytest.raises(InputError, match="--theta"):
        detect_activations(synth_stems(), RATE, theta=0)
    with pytest.raises(InputError, match="unknown sources guitar"):
        detect_activations({"guitar": np.zeros((2, 100))}, RATE)
    with pytest.raises(InputError, match="has 2 channels, the other stems 3"):
        detect_activations({"drums": np.zeros((2, 100)), "bass": np.zeros((3, 100))}, RATE)

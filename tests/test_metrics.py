"""Metrics: BSSEval v4 against museval on the same signals, and exact values on signals with known answers."""

from __future__ import annotations

import importlib.util
import json
import math
from types import ModuleType

import numpy as np
import pytest

from ugosa_cli.errors import InputError
from ugosa_cli.metrics import (
    BSS_METRICS,
    METRICS,
    bss_eval_v4,
    evaluate_stems,
    frame_slices,
    mdx_sdr,
    silent_frame_metrics,
)

RATE = 8000
TOLERANCE_DB = 0.05


@pytest.fixture(scope="module")
def museval_metrics() -> ModuleType:
    """museval's metric module, loaded on its own: the package's __init__ needs ffmpeg (musdb -> stempeg)."""
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("museval is not installed (pip install -e '.[test]')")
    pytest.importorskip("scipy")
    location = importlib.util.spec_from_file_location(
        "museval_metrics_only", f"{spec.submodule_search_locations[0]}/metrics.py"
    )
    module = importlib.util.module_from_spec(location)
    location.loader.exec_module(module)
    return module


def music_like(sources: int, channels: int, seconds: float, seed: int) -> np.ndarray:
    """(sources, channels, samples): each source a few decaying harmonic notes plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.empty((sources, channels, t.size))
    for j in range(sources):
        notes = sum(
            np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h
            * np.exp(-3 * ((t - onset) % 0.5)) for f0, onset in zip(rng.uniform(60, 800, 3), rng.uniform(0, 0.5, 3))
            for h in (1, 2, 3)
        )
        for c in range(channels):
            out[j, c] = (0.6 + 0.2 * c) * notes + 0.05 * rng.standard_normal(t.size)
    return out


def separate_badly(refs: np.ndarray, seed: int) -> np.ndarray:
    """Estimates with every kind of error: a filter on the target, leakage of the others, added noise."""
    rng = np.random.default_rng(seed)
    ests = np.empty_like(refs)
    for j in range(refs.shape[0]):
        others = refs.sum(axis=0) - refs[j]
        ests[j] = 0.9 * refs[j] + 0.25 * np.roll(refs[j], 7, axis=-1) + 0.15 * others
        ests[j] += 0.05 * rng.standard_normal(refs[j].shape)
    return ests


def museval_framewise(
    module: ModuleType, refs: np.ndarray, ests: np.ndarray, window: int, hop: int, filter_length: int = 512
) -> dict:
    sdr, isr, sir, sar, _ = module.bss_eval(
        refs.transpose(0, 2, 1),
        ests.transpose(0, 2, 1),
        window=window,
        hop=hop,
        compute_permutation=False,
        filters_len=filter_length,
    )
    return {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}


def assert_framewise_equal(ours: dict, theirs: dict) -> None:
    for metric in BSS_METRICS:
        assert ours[metric].shape == theirs[metric].shape, metric
        np.testing.assert_array_equal(np.isnan(ours[metric]), np.isnan(theirs[metric]), err_msg=metric)
        np.testing.assert_allclose(ours[metric], theirs[metric], atol=TOLERANCE_DB, equal_nan=True, err_msg=metric)


@pytest.mark.parametrize(
    ("sources", "channels", "seconds", "win", "hop"),
    [
        (2, 2, 3.0, 1.0, 1.0),  # SiSEC defaults, stereo
        (3, 1, 3.5, 2.0, 1.5),  # the paper's overlapping frames, mono, a partial tail that is dropped
    ],
)
def test_bss_eval_v4_matches_museval(museval_metrics, sources, channels, seconds, win, hop) -> None:
    refs = music_like(sources, channels, seconds, seed=sources)
    ests = separate_badly(refs, seed=1)
    window, step = int(win * RATE), int(hop * RATE)
    ours = bss_eval_v4(refs, ests, window, step)
    theirs = museval_framewise(museval_metrics, refs, ests, window, step)
    assert_framewise_equal(ours, theirs)
    assert np.isfinite(ours["SDR"]).all() and 0 < np.median(ours["SDR"]) < 30


def test_frames_with_a_silent_stem_are_skipped_for_every_source_like_museval(museval_metrics) -> None:
    refs = music_like(2, 2, 3.0, seed=5)
    refs[1, :, RATE : 2 * RATE] = 0.0  # the second source rests during the second frame
    ests = separate_badly(refs, seed=2)
    ests[0, :, 2 * RATE :] = 0.0  # the first estimate goes silent in the third frame
    ours = bss_eval_v4(refs, ests, RATE, RATE, filter_length=64)
    assert_framewise_equal(ours, museval_framewise(museval_metrics, refs, ests, RATE, RATE, filter_length=64))
    assert np.isnan(ours["SDR"][:, 1:]).all() and np.isfinite(ours["SDR"][:, 0]).all()


def test_window_longer_than_the_track_scores_one_frame_like_museval(museval_metrics) -> None:
    refs = music_like(2, 2, 1.5, seed=7)
    ests = separate_badly(refs, seed=3)
    ours = bss_eval_v4(refs, ests, 4 * RATE, RATE, filter_length=64)
    assert ours["SDR"].shape == (2, 1)
    assert_framewise_equal(ours, museval_framewise(museval_metrics, refs, ests, 4 * RATE, RATE, filter_length=64))


def test_evaluate_stems_reports_museval_frame_medians(museval_metrics) -> None:
    refs = music_like(2, 1, 4.0, seed=11)
    refs[0, :, : RATE + 100] = 0.0  # the first two frames are skipped, the median is over the others
    ests = separate_badly(refs, seed=4)
    names = ("bass", "vocals")
    result = evaluate_stems(dict(zip(names, refs)), dict(zip(names, ests)), RATE, win=1.0, hop=1.0)
    theirs = museval_framewise(museval_metrics, refs, ests, RATE, RATE)
    for j, name in enumerate(names):
        for metric in BSS_METRICS:
            assert result["sources"][name][metric] == pytest.approx(np.nanmedian(theirs[metric][j]), abs=TOLERANCE_DB)


# Exact answers, no museval needed.


def test_scaled_reference_has_known_sdr_and_no_interference() -> None:
    refs = music_like(2, 1, 2.0, seed=3)
    ests = 0.5 * refs
    scores = bss_eval_v4(refs, ests, RATE, RATE)
    # The error is the other half of the reference: 10 log10(|s|^2 / |0.5 s|^2); it is all spatial distortion.
    np.testing.assert_allclose(scores["SDR"], 10 * np.log10(4), atol=1e-6)
    np.testing.assert_allclose(scores["ISR"], 10 * np.log10(4), atol=1e-6)
    assert (scores["SIR"] > 100).all() and (scores["SAR"] > 100).all()


def test_leakage_is_counted_as_interference() -> None:
    rng = np.random.default_rng(0)
    refs = rng.standard_normal((2, 1, 2 * RATE))
    ests = refs + 0.1 * refs[::-1]
    scores = bss_eval_v4(refs, ests, 2 * RATE, 2 * RATE)
    expected = 10 * np.log10(np.sum(refs**2, axis=(1, 2)) / np.sum((0.1 * refs[::-1]) ** 2, axis=(1, 2)))
    np.testing.assert_allclose(scores["SDR"][:, 0], expected, atol=1e-6)
    np.testing.assert_allclose(scores["SIR"][:, 0], expected, atol=0.3)  # minus what the filters explain
    assert (scores["SAR"] > 60).all()


def test_frame_slices_are_whole_windows() -> None:
    assert frame_slices(10, 4, 3) == [slice(0, 4), slice(3, 7), slice(6, 10)]
    assert frame_slices(11, 4, 3) == [slice(0, 4), slice(3, 7), slice(6, 10)]
    assert frame_slices(3, 4, 3) == [slice(0, 3)]


def test_mdx_sdr_is_the_whole_track_energy_ratio() -> None:
    ref = np.ones((2, 100))
    assert mdx_sdr(ref, 0.9 * ref) == pytest.approx(10 * math.log10((200 + 1e-7) / (2 + 1e-7)))
    assert mdx_sdr(np.zeros((2, 100)), np.zeros((2, 100))) == 0.0
    assert math.isfinite(mdx_sdr(ref, ref))


def test_pes_and_eps_average_the_silent_frames_per_channel() -> None:
    ref = np.ones((2, 40))
    ref[:, 10:20] = 0.0  # frame 1 silent in both channels
    ref[1, 30:40] = 0.0  # frame 3 silent in the right channel only
    est = np.full((2, 40), 0.1)
    est[0, 20:30] = 0.0  # the estimate is silent in frame 2, left channel
    pes, eps = silent_frame_metrics(ref, est, 10, 10)
    leak = 10 * math.log10(10 * 0.01 + 1e-12)  # 0.1 on 10 samples
    assert pes == pytest.approx(leak)  # left: frame 1; right: frames 1 and 3; all the same energy
    assert eps == pytest.approx(10 * math.log10(10 + 1e-12))  # only the left channel has a silent frame
    assert silent_frame_metrics(np.ones((1, 40)), np.ones((1, 40)), 10, 10) == (None, None)


def test_evaluate_stems_handles_silent_stems_without_nan() -> None:
    refs = music_like(3, 2, 3.0, seed=9)
    refs[2] = 0.0  # a stem that never plays
    ests = separate_badly(refs, seed=5)
    ests[1] = 0.0  # a stem the separator left empty
    names = ("drums", "bass", "vocals")
    result = evaluate_stems(dict(zip(names, refs)), dict(zip(names, ests)), RATE)
    json.dumps(result, allow_nan=False)  # no NaN or infinity anywhere
    drums, bass, vocals = (result["sources"][n] for n in names)
    assert all(isinstance(drums[m], float) for m in BSS_METRICS + ("MDX_SDR",))
    assert all(bass[m] is None for m in BSS_METRICS) and all(vocals[m] is None for m in BSS_METRICS)
    assert bass["MDX_SDR"] == pytest.approx(0.0, abs=1e-6) and vocals["MDX_SDR"] is None
    assert vocals["PES"] is not None and vocals["EPS"] is None and bass["EPS"] is not None
    reasons = {entry["source"]: entry["reason"] for entry in result["skipped"]}
    assert "estimate is silent" in reasons["bass"] and "reference is silent" in reasons["vocals"]
    assert result["mean"]["SDR"] == pytest.approx(drums["SDR"])
    assert result["mean"]["MDX_SDR"] == pytest.approx((drums["MDX_SDR"] + bass["MDX_SDR"]) / 2)
    assert set(result["mean"]) == set(METRICS) and result["settings"]["frames"] == 3


def test_evaluate_stems_reports_a_perfect_estimate_as_skipped_not_infinite() -> None:
    refs = music_like(2, 1, 2.0, seed=2)
    result = evaluate_stems({"a": refs[0], "b": refs[1]}, {"a": refs[0], "b": 0.5 * refs[1]}, RATE)
    assert result["sources"]["a"]["SDR"] is None
    assert any(e["source"] == "a" and e["metrics"] == ["SDR"] and "+inf" in e["reason"] for e in result["skipped"])
    assert result["sources"]["b"]["SDR"] == pytest.approx(10 * math.log10(4), abs=1e-6)
    json.dumps(result, allow_nan=False)


def test_evaluate_stems_rejects_unmatched_sources_and_shapes() -> None:
    one = np.ones((1, 100))
    with pytest.raises(InputError, match="unmatched: b"):
        evaluate_stems({"a": one, "b": one}, {"a": one}, RATE)
    with pytest.raises(InputError, match="shape"):
        evaluate_stems({"a": one}, {"a": np.ones((1, 99))}, RATE)
    with pytest.raises(InputError, match=r"win 0: use 0\.1 s or more"):
        evaluate_stems({"a": one}, {"a": one}, RATE, win=0.0)

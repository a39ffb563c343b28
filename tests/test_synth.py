"""The synthetic multitrack song generator: determinism, regions, mixing, timbre, sound checks, files."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest

from ugosa_cli.audio import read_audio
from ugosa_cli.demo.synth import SOURCES, Song, drum_kit, generate_song, write_song
from ugosa_cli.errors import InputError
from ugosa_cli.labels import read_labels

SR = 22050
DURATION = 4.0


@functools.cache
def song(seed: int, timbre: float = 0.0, duration: float = DURATION, samplerate: int = SR) -> Song:
    """A cached song; tests only read it."""
    return generate_song(seed, duration=duration, samplerate=samplerate, timbre=timbre)


def inside(regions: list[tuple[float, float]], frames: int, samplerate: int) -> np.ndarray:
    """Samples whose time falls in one of the regions (borders lie on samples)."""
    mask = np.zeros(frames, dtype=bool)
    for start, end in regions:
        mask[round(start * samplerate) : round(end * samplerate)] = True
    return mask


def band_fraction(signal: np.ndarray, samplerate: int, low: float, high: float) -> float:
    """Fraction of the energy of a mono signal between ``low`` and ``high`` Hz."""
    power = np.abs(np.fft.rfft(signal)) ** 2
    freqs = np.fft.rfftfreq(len(signal), 1.0 / samplerate)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def centroid(stem: np.ndarray, samplerate: int) -> float:
    power = np.abs(np.fft.rfft(stem.mean(axis=0))) ** 2
    return float((power * np.fft.rfftfreq(stem.shape[1], 1.0 / samplerate)).sum() / power.sum())


def test_same_seed_and_settings_give_a_bit_identical_song():
    first = generate_song(3, duration=DURATION, samplerate=SR, timbre=0.7)
    again = generate_song(3, duration=DURATION, samplerate=SR, timbre=0.7)
    for name in SOURCES:
        assert first.stems[name].tobytes() == again.stems[name].tobytes()
    assert (first.regions, first.tempo, first.key) == (again.regions, again.tempo, again.key)
    other = song(4)
    assert not np.array_equal(first.mix, other.mix)


@pytest.mark.parametrize("channels", [1, 2])
def test_stems_shape_type_and_song_facts(channels):
    result = generate_song(5, duration=3.3, samplerate=16000, channels=channels, timbre=0.25)
    assert list(result.stems) == list(SOURCES)
    for stem in result.stems.values():
        assert stem.shape == (channels, 52800)
        assert stem.dtype == np.float32
    assert (result.samplerate, result.seed, result.timbre) == (16000, 5, 0.25)
    assert result.duration == pytest.approx(3.3)
    assert 80 <= result.tempo <= 140
    assert re.fullmatch(r"[A-G]#? (major|minor)", result.key)


@pytest.mark.parametrize("seed", range(8))
def test_stems_are_exactly_silent_outside_their_regions_and_sound_inside_each(seed):
    result = song(seed)
    for name, stem in result.stems.items():
        regions = result.regions[name]
        assert regions == sorted(regions)
        for (_, end), (start, _) in zip(regions, regions[1:]):
            assert end < start, f"{name}: regions touch or overlap"
        for start, end in regions:
            assert 0 <= start < end <= result.duration
            assert abs(start * SR - round(start * SR)) < 1e-6 and abs(end * SR - round(end * SR)) < 1e-6
            part = stem[:, round(start * SR) : round(end * SR)]
            assert np.sqrt(np.mean(part**2)) > 1e-3, f"{name} is silent in its region {start}-{end}"
        mask = inside(regions, result.frames, SR)
        assert not np.any(stem[:, ~mask]), f"{name} sounds outside its regions"


@pytest.mark.parametrize(("duration", "samplerate"), [(2.0, 8000), (DURATION, SR), (9.5, 11025)])
def test_every_source_rests_somewhere_and_plays_somewhere(duration, samplerate):
    for seed in range(10):
        result = song(seed, duration=duration, samplerate=samplerate)
        for name in SOURCES:
            playing = sum(end - start for start, end in result.regions[name])
            assert 0 < playing < result.duration - 0.1, (seed, name, result.regions[name])


@pytest.mark.parametrize(("seed", "duration", "samplerate"), [(0, 2.0, 8000), (1, 7.3, 11025), (2, 20.0, 8000)])
def test_quarter_rests_follow_the_papers_protocol(seed, duration, samplerate):
    """rests="quarters": every source rests in one quarter and plays the other three; one source per quarter."""
    result = generate_song(seed, duration=duration, samplerate=samplerate, rests="quarters")
    assert result.rests == "quarters"
    silent_quarter = {}
    for name in SOURCES:
        gaps = [(0.0, result.regions[name][0][0])] if result.regions[name][0][0] > 0 else []
        gaps += [(end, start) for (_, end), (start, _) in zip(result.regions[name], result.regions[name][1:])]
        if result.regions[name][-1][1] < result.duration:
            gaps.append((result.regions[name][-1][1], result.duration))
        assert len(gaps) == 1, (name, result.regions[name])
        start, end = gaps[0]
        assert 0.15 * duration < end - start < 0.35 * duration, (name, gaps)
        silent_quarter[name] = round(4 * (start + end) / 2 / duration - 0.5)
        stem = result.stems[name]
        assert not np.any(stem[:, round(start * samplerate) : round(end * samplerate)])
    assert sorted(silent_quarter.values()) == [0, 1, 2, 3]
    sections = generate_song(seed, duration=duration, samplerate=samplerate)
    assert sections.rests == "sections" and sections.regions != result.regions


@pytest.mark.parametrize("seed", range(4))
def test_mix_is_the_sum_of_the_stems_and_does_not_clip(seed):
    result = song(seed)
    stems = result.stems
    np.testing.assert_array_equal(result.mix, stems["drums"] + stems["bass"] + stems["other"] + stems["vocals"])
    assert 0.5 < np.abs(result.mix).max() < 1.0
    assert all(np.abs(stem).max() < 1.0 for stem in stems.values())


@pytest.mark.parametrize("seed", range(3))
def test_timbre_moves_every_spectrum_but_keeps_the_arrangement(seed):
    base = song(seed)
    shifts = {}
    for timbre in (0.5, 2.0):
        moved = song(seed, timbre)
        assert (moved.regions, moved.tempo, moved.key) == (base.regions, base.tempo, base.key)
        shifts[timbre] = {
            name: abs(math.log2(centroid(moved.stems[name], SR) / centroid(base.stems[name], SR))) for name in SOURCES
        }
    for name in SOURCES:
        assert shifts[2.0][name] > 0.15, f"{name}: timbre 2 moves the spectral centroid too little"
        assert shifts[2.0][name] > shifts[0.5][name], f"{name}: a larger timbre does not move it further"


@pytest.mark.parametrize("seed", range(4))
def test_bass_lives_below_300_hz(seed):
    bass = song(seed).stems["bass"].mean(axis=0)
    assert band_fraction(bass, SR, 0, 300) > 0.95


@pytest.mark.parametrize("seed", range(4))
def test_other_sits_in_the_midrange_above_the_bass(seed):
    other = song(seed).stems["other"].mean(axis=0)
    assert band_fraction(other, SR, 100, 4000) > 0.9
    assert band_fraction(other, SR, 0, 100) < 0.05


@pytest.mark.parametrize("seed", range(4))
def test_drum_kit_pieces_sit_where_drums_do(seed):
    kit = drum_kit(seed, samplerate=SR)
    assert band_fraction(kit["hat"], SR, 5000, SR) > 0.9
    assert band_fraction(kit["open_hat"], SR, 5000, SR) > 0.9
    assert band_fraction(kit["kick"], SR, 0, 200) > 0.9
    assert band_fraction(kit["snare"], SR, 150, 10000) > 0.9
    drums = song(seed).stems["drums"].mean(axis=0)
    assert band_fraction(drums, SR, 5000, SR) > 0.005, "no hi-hats in the drum stem"


def _pitches(signal: np.ndarray, samplerate: int, regions: list[tuple[float, float]]) -> list[float]:
    """Autocorrelation pitch (60-1000 Hz) of 40 ms frames every 0.1 s inside the regions."""
    size = int(0.04 * samplerate)
    lags = slice(samplerate // 1000, samplerate // 60)
    found = []
    for start, end in regions:
        for time in np.arange(start + 0.1, end - 0.1, 0.1):
            frame = signal[int(time * samplerate) : int(time * samplerate) + size]
            if np.sqrt(np.mean(frame**2)) < 1e-3:
                continue
            correlation = np.correlate(frame, frame, "full")[size - 1 :]
            found.append(samplerate / (lags.start + int(np.argmax(correlation[lags]))))
    return found


@pytest.mark.parametrize("seed", range(5))
def test_vocals_sing_in_a_singing_range(seed):
    result = song(seed)
    pitches = _pitches(result.stems["vocals"].mean(axis=0), SR, result.regions["vocals"])
    assert len(pitches) >= 5
    assert 100 < float(np.median(pitches)) < 700


def test_sources_are_placed_in_the_stereo_field():
    result = song(2)
    balance = {}
    for name, stem in result.stems.items():
        assert not np.array_equal(stem[0], stem[1]), f"{name} is the same in both channels"
        balance[name] = float(np.sum(stem[0] ** 2) / np.sum(stem[1] ** 2))
    assert len({round(value, 3) for value in balance.values()}) == len(SOURCES)


def test_write_song_writes_readable_stems_and_labels_that_read_back(tmp_path):
    result = song(6)
    paths = write_song(result, tmp_path / "song")
    assert {path.name for path in paths.values()} == {
        "mixture.wav", "drums.wav", "bass.wav", "other.wav", "vocals.wav", "labels.txt",
    }
    mixture = read_audio(paths["mixture"])
    assert mixture.samplerate == SR
    np.testing.assert_array_equal(mixture.samples, result.mix)
    for name in SOURCES:
        np.testing.assert_array_equal(read_audio(paths[name]).samples, result.stems[name])
    labels = read_labels(paths["labels"], duration=result.duration)
    assert labels.unconstrained == ()
    for name in SOURCES:
        read_back = labels.regions[name]
        assert len(read_back) == len(result.regions[name])
        np.testing.assert_allclose(np.array(read_back), np.array(result.regions[name]), rtol=0, atol=1e-6)


def test_write_song_as_flac_and_refuses_unknown_formats(tmp_path):
    result = song(1)
    paths = write_song(result, tmp_path, fmt="flac")
    assert paths["mixture"].name == "mixture.flac"
    np.testing.assert_allclose(read_audio(paths["bass"]).samples, result.stems["bass"], rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="mp3"):
        write_song(result, tmp_path, fmt="mp3")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 0, "duration": 1.0}, "too short"),
        ({"seed": 0, "samplerate": 4000}, "sample rate"),
        ({"seed": 0, "channels": 6}, "channels"),
        ({"seed": 0, "timbre": math.nan}, "timbre"),
        ({"seed": 0, "rests": "halves"}, "rest layout 'halves' is not known; use sections or quarters"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(InputError, match=message):
        generate_song(**kwargs)

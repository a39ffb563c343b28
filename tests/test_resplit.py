"""`ugosa separate --labels --resplit`: the mixture re-split among the stems labelled active."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ugosa_cli.audio import read_audio
from ugosa_cli.checkpoint import load_model_file
from ugosa_cli.labels import Labels, activation_matrix, labels_from_matrix, read_labels
from ugosa_cli.postfilters import Resplit, resplit_array
from ugosa_cli.separation import mean_blocks, separate_audio

from conftest import tone_mix

RATE = 8000  # a 512-sample window (64 ms), hop 128


def _song(frames: int = 16000, channels: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, Labels]:
    """Random stems, their mix, and labels with the bass resting in the middle and the drums at the end."""
    rng = np.random.default_rng(seed)
    stems = rng.standard_normal((4, channels, frames)).astype(np.float32)
    activations = np.ones((4, frames), np.float32)
    activations[1, frames // 4 : 3 * frames // 4] = 0
    activations[0, 7 * frames // 8 :] = 0
    return stems, stems.sum(axis=0), labels_from_matrix(activations, RATE)


def _streamed(stems: np.ndarray, mix: np.ndarray, labels: Labels, size: int, mix_size: int) -> np.ndarray:
    frames = mix.shape[-1]
    mixture = (mix[:, s : s + mix_size] for s in range(0, frames, mix_size))
    blocks = (stems[..., s : s + size] for s in range(0, frames, size))
    return np.concatenate(list(Resplit(labels, RATE, frames, mixture).stream(blocks)), axis=-1)


def test_streaming_in_any_block_sizes_equals_filtering_the_whole_song():
    stems, mix, labels = _song()
    estimates = stems * 0.5 + 0.1 * stems[::-1]  # leaky estimates
    whole = resplit_array(estimates, mix, labels, RATE)
    assert whole.shape == stems.shape
    for size, mix_size in ((1000, 777), (129, 5000), (4096, 1)):
        np.testing.assert_allclose(_streamed(estimates, mix, labels, size, mix_size), whole, atol=1e-5)


def test_stems_add_up_to_the_mix_and_rest_exactly_where_labelled_silent():
    stems, mix, labels = _song()
    split = resplit_array(stems * 0.5 + 0.1 * stems[::-1], mix, labels, RATE)
    np.testing.assert_allclose(split.sum(axis=0), mix, atol=1e-4)
    window = 512
    assert np.abs(split[1, :, 4000 + window : 12000 - window]).max() == 0  # bass rests in the middle
    assert np.abs(split[0, :, 14000 + window :]).max() == 0  # drums rest at the end
    assert np.abs(split[1, :, : 4000 - window]).mean() > 0.1  # and play elsewhere


def test_stems_that_are_right_pass_unchanged_where_the_mix_re_split_would_change_them():
    """Mode "unexplained": stems that add up to the mix and are silent where labelled so stay as they are, where
    re-splitting the whole mixture (mode "mix") re-estimates them from their powers."""
    stems, _, labels = _song()
    exact = stems * activation_matrix(labels, RATE, stems.shape[-1])[:, None, :]
    mix = exact.sum(axis=0)
    window = 512
    away = np.r_[window : 4000 - window, 4000 + window : 12000 - window, 12000 + window : 14000 - window,
                 14000 + window : 16000 - window]  # a window away from every border
    np.testing.assert_allclose(resplit_array(exact, mix, labels, RATE)[..., away], exact[..., away], atol=1e-4)
    assert np.abs(resplit_array(exact, mix, labels, RATE, mode="mix")[..., away] - exact[..., away]).max() > 0.1


def _four_tones_with_bass_leak(frames: int = 16000) -> tuple[np.ndarray, np.ndarray, Labels]:
    """Four pure tones (250 Hz to 2 kHz) playing where ``_song``'s labels say, and estimates of them in which the
    bass holds half of "other" (1 kHz), the "other" estimate the other half."""
    _, _, labels = _song(frames)
    time = np.arange(frames) / RATE
    tones = np.stack([np.sin(2 * np.pi * hz * time) for hz in (250, 500, 1000, 2000)]).astype(np.float32)
    stems = np.repeat(tones[:, None, :], 2, axis=1) * activation_matrix(labels, RATE, frames)[:, None, :]
    leaky = stems.copy()
    leaky[1] += 0.5 * stems[2]
    leaky[2] -= 0.5 * stems[2]
    return stems, leaky, labels


def test_the_leakage_of_a_resting_stem_goes_to_the_playing_ones():
    stems, leaky, labels = _four_tones_with_bass_leak()
    split = resplit_array(leaky, stems.sum(axis=0), labels, RATE)
    middle = slice(4600, 11400)  # the bass rests here
    error = lambda estimate: np.mean((estimate[2, :, middle] - stems[2, :, middle]) ** 2)  # noqa: E731
    assert error(split) < 0.01 * error(leaky)


def test_a_source_alone_gets_the_whole_mix_and_unlabelled_time_is_shared():
    frames = 8000
    stems, mix, _ = _song(frames)
    activations = np.zeros((4, frames), np.float32)
    activations[3, :4000] = 1  # only the vocals in the first half, nobody labelled in the second
    split = resplit_array(stems, mix, labels_from_matrix(activations, RATE), RATE)
    np.testing.assert_allclose(split[3, :, :3000], mix[:, :3000], atol=1e-5)
    assert all(np.abs(split[i, :, 5000:]).mean() > 0.1 for i in range(4))
    np.testing.assert_allclose(split.sum(axis=0), mix, atol=1e-4)


@pytest.mark.parametrize("frames", [1, 100, 700])
def test_songs_shorter_than_a_window_and_mono_stems(frames):
    stems, mix, labels = _song(frames, channels=1)
    split = resplit_array(stems, mix, labels, RATE)
    assert split.shape == (4, 1, frames)
    np.testing.assert_allclose(split.sum(axis=0), mix, atol=1e-4)


def test_the_mean_of_two_block_streams_does_not_depend_on_their_block_sizes():
    rng = np.random.default_rng(1)
    first, second = rng.standard_normal((2, 4, 2, 1000)).astype(np.float32)
    pieces = lambda stems, size: (stems[..., s : s + size] for s in range(0, 1000, size))  # noqa: E731
    mean = np.concatenate(list(mean_blocks(pieces(first, 77), pieces(second, 300))), axis=-1)
    np.testing.assert_allclose(mean, (first + second) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="differ in length by 1"):
        list(mean_blocks([first], [second[..., :999]]))
    with pytest.raises(ValueError, match="differ in length by 1"):
        list(mean_blocks([first[..., :999]], [second]))


def test_a_mixture_shorter_than_the_stems_is_an_error():
    stems, mix, labels = _song(4000)
    with pytest.raises(ValueError, match="mixture ended"):
        list(Resplit(labels, RATE, 4000, [mix[:, :3000]]).stream([stems]))


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, tone_mix(4.0, RATE, seed=2), RATE, subtype="FLOAT")
    labels = tmp_path / "labels.txt"
    labels.write_text("0\t2\tvocals\n1.5\t4\tdrums\n0\t4\tbass\n0\t4\tother\n")
    return path, labels


def test_separate_b0_resplit_writes_stems_that_sum_to_the_mix_and_rest_where_labelled(cli, model_file, song, tmp_path):
    path, labels = song
    result = cli("separate", path, "--labels", labels, "--model", model_file, "-o", tmp_path / "o", "--resplit",
                 "--strategy", "B0", "--bits", "32", "--clip-mode", "none", "--json")
    assert result.exit_code == 0, result.stderr
    stems = {name: sf.read(p, always_2d=True)[0].T for name, p in json.loads(result.stdout)["stems"].items()}
    mix = sf.read(path, always_2d=True)[0].T
    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-4)
    window = 512
    assert np.abs(stems["vocals"][:, 2 * RATE + window :]).max() == 0  # vocals labelled silent after 2 s
    assert np.abs(stems["drums"][:, : int(1.5 * RATE) - window]).max() == 0  # drums silent before 1.5 s
    assert np.abs(stems["vocals"][:, : 2 * RATE - window]).max() > 0


@pytest.mark.slow  # over a second: CI runs it
def test_separate_applies_the_rests_of_two_sources_to_the_pretrained_stems_instead_of_adapting(
    cli, model_file, song, tmp_path
):
    """Rests of two of four sources (the fixture's vocals and drums), no strategy asked for: ``separate`` does not
    adapt but writes what ``--strategy B0 --resplit`` writes, and says so; ``--gate`` is kept as asked."""
    path, labels = song
    common = ("--labels", labels, "--model", model_file, "--bits", "32", "--clip-mode", "none", "--json")
    result = cli("separate", path, "-o", tmp_path / "auto", *common)
    asked = cli("separate", path, "-o", tmp_path / "b0", "--strategy", "B0", "--resplit", *common)
    assert result.exit_code == 0 and asked.exit_code == 0, result.stderr + asked.stderr
    report = json.loads(result.stdout)
    plan = report["adaptation"]["plan"]
    assert plan["strategy"] == "B0" and plan["resplits"] and plan["steps"] == 0
    assert "not adapting: the labels give rests for drums, vocals only" in result.stderr
    assert "--strategy P-L2:D to adapt anyway" in result.stderr and "epochs" not in result.stderr
    written = {name: sf.read(p, always_2d=True)[0] for name, p in report["stems"].items()}
    for name, p in json.loads(asked.stdout)["stems"].items():
        np.testing.assert_array_equal(written[name], sf.read(p, always_2d=True)[0])
    assert np.abs(written["vocals"][2 * RATE + 512 :]).max() == 0  # resting where labelled
    gated = cli("separate", path, "-o", tmp_path / "gate", "--gate", *common)
    assert gated.exit_code == 0, gated.stderr
    stems = {name: sf.read(p, always_2d=True)[0] for name, p in json.loads(gated.stdout)["stems"].items()}
    pretrained = separate_audio(load_model_file(model_file).model, read_audio(path))
    inner = slice(RATE // 10, -RATE // 10)  # the gate fades in and out at the song's ends
    np.testing.assert_allclose(stems["bass"].T[:, inner], pretrained[1][:, inner], atol=1e-5)  # the B0 stem
    assert np.abs(stems["vocals"][2 * RATE + 512 :]).max() == 0


@pytest.mark.slow  # over a second: CI runs it
def test_separate_with_labels_marking_no_rest_re_splits_the_stems_and_warns(cli, model_file, song, tmp_path):
    path, _ = song
    labels = tmp_path / "all.txt"
    labels.write_text("0\t4\tvocals\n0\t4\tdrums\n")  # playing throughout; bass and other unlabelled
    result = cli("separate", path, "--labels", labels, "--model", model_file, "-o", tmp_path / "o", "--bits", "32",
                 "--clip-mode", "none", "--json")
    assert result.exit_code == 0, result.stderr
    assert "ugosa: warning: the labels mark no source as silent anywhere" in result.stderr
    stems = [sf.read(p, always_2d=True)[0] for p in json.loads(result.stdout)["stems"].values()]
    np.testing.assert_allclose(sum(stems), sf.read(path, always_2d=True)[0], atol=1e-4)  # re-split: adds up
    asked = cli("separate", path, "--labels", labels, "--model", model_file, "-o", tmp_path / "p", "--strategy", "P-L5:D")
    assert asked.exit_code == 2 and "no source as silent" in asked.stderr  # adapting from it is still refused


@pytest.mark.slow  # over a second: CI runs it
def test_after_adapting_resplit_keeps_the_adapted_stems_and_re_splits_what_they_leave_unexplained(
    cli, model_file, song, tmp_path
):
    """The resplit rule after adapting: mode "unexplained", borders as labelled, guided by the pretrained and
    adapted stems together."""
    path, labels = song
    flags = ("--labels", labels, "--strategy", "P-L5:D", "--window", "1", "--epochs", "1", "--lr", "1e-2", "--seed", "0",
             "--holdout", "0")
    adapted = cli("adapt", path, "--model", model_file, "-o", tmp_path / "adapted.th", *flags)
    result = cli("separate", path, "--model", model_file, "-o", tmp_path / "o", *flags,
                 "--bits", "32", "--clip-mode", "none", "--json")
    assert adapted.exit_code == 0 and result.exit_code == 0, adapted.stderr + result.stderr
    audio = read_audio(path)
    song_labels = read_labels(labels, duration=audio.duration)
    before = separate_audio(load_model_file(model_file).model, audio)
    after = separate_audio(load_model_file(tmp_path / "adapted.th").model, audio)
    assert np.abs(after - before).max() > 1e-3  # adaptation changed the stems
    expected = resplit_array(after, audio.samples, song_labels, RATE, guide=0.5 * (before + after))
    written = {name: sf.read(p, always_2d=True)[0].T for name, p in json.loads(result.stdout)["stems"].items()}
    for index, name in enumerate(("drums", "bass", "other", "vocals")):
        np.testing.assert_allclose(written[name], expected[index], atol=1e-5)
    np.testing.assert_allclose(sum(written.values()), audio.samples, atol=1e-4)  # they add up to the mix
    window = 512
    assert np.abs(written["vocals"][:, 2 * RATE + window :]).max() == 0  # silent from 2 s
    assert np.abs(written["drums"][:, : int(1.5 * RATE) - window]).max() == 0  # and before 1.5 s
    playing = slice(int(1.5 * RATE) + window, 2 * RATE - window)  # where no source rests
    change = np.sum((written["bass"][:, playing] - after[1][:, playing]) ** 2)
    unexplained = np.sum((audio.samples[:, playing] - after[:, :, playing].sum(axis=0)) ** 2)
    assert change <= 1.05 * unexplained  # the adapted stem, plus at most what the stems leave unexplained
    assert np.abs(written["bass"][:, -RATE:] - after[1][:, -RATE:]).max() > 1e-3  # it gains the vocals' rest there


def test_separate_resplit_needs_labels_and_excludes_gate(cli, model_file, song):
    path, labels = song
    result = cli("separate", path, "--model", model_file, "--resplit")
    assert result.exit_code == 2 and "--resplit needs --labels" in result.stderr
    result = cli("separate", path, "--model", model_file, "--labels", labels, "--resplit", "--gate")
    assert result.exit_code == 2 and "exclude each other" in result.stderr
    assert "Traceback" not in result.stderr



# --- mode "stems": only what the resting stems hold is re-split --------------------------------------------


def _streamed_with_guide(stems, guide, mix, labels, size, guide_size, mode="stems"):
    frames = mix.shape[-1]
    blocks = (stems[..., s : s + size] for s in range(0, frames, size))
    guides = (guide[..., s : s + guide_size] for s in range(0, frames, guide_size))
    return np.concatenate(list(Resplit(labels, RATE, frames, [mix], mode=mode).stream(blocks, guides)), axis=-1)


def test_stems_mode_streams_with_its_guide_in_any_block_sizes():
    stems, mix, labels = _song()
    estimates = stems * 0.5 + 0.1 * stems[::-1]
    guide = stems * 0.8
    whole = resplit_array(estimates, mix, labels, RATE, guide=guide, mode="stems")
    for size, guide_size in ((1000, 777), (129, 5000), (4096, 1)):
        np.testing.assert_allclose(_streamed_with_guide(estimates, guide, mix, labels, size, guide_size), whole,
                                   atol=1e-5)
    with pytest.raises(ValueError, match="guide ended"):
        list(Resplit(labels, RATE, mix.shape[-1], [mix], mode="stems").stream([estimates], [guide[..., :-10]]))


def test_stems_mode_leaves_stems_alone_where_nothing_rests_and_silences_resting_ones():
    stems, mix, labels = _song()
    estimates = stems * 0.5 + 0.1 * stems[::-1]
    split = resplit_array(estimates, mix, labels, RATE, mode="stems")
    window = 512
    everyone = slice(window, 4000 - window)  # all four labelled active here
    np.testing.assert_allclose(split[..., everyone], estimates[..., everyone], atol=1e-5)
    assert np.abs(split[1, :, 4000 + window : 12000 - window]).max() == 0  # bass rests in the middle
    # what the resting stem held is handed on, not lost: the stems' sum is kept
    np.testing.assert_allclose(split.sum(axis=0), estimates.sum(axis=0), atol=1e-4)


def test_stems_mode_hands_a_resting_stems_leakage_to_the_source_the_guide_says_it_sounds_like():
    stems, leaky, labels = _four_tones_with_bass_leak()
    split = resplit_array(leaky, stems.sum(axis=0), labels, RATE, guide=stems, mode="stems")
    middle = slice(4600, 11400)
    error = lambda estimate: np.mean((estimate[2, :, middle] - stems[2, :, middle]) ** 2)  # noqa: E731
    assert error(split) < 0.01 * error(leaky)
    np.testing.assert_allclose(split[0, :, middle], leaky[0, :, middle], atol=1e-4)  # drums untouched there


def test_an_unknown_mode_is_refused():
    _stems, mix, labels = _song(1000)
    with pytest.raises(ValueError, match="resplit mode"):
        Resplit(labels, RATE, 1000, [mix], mode="median")

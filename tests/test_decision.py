"""Adapting that pays: the step-size rule, the rests held out of training, and the decision of what to write."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from ugosa_cli.adaptation import (
    HOLDOUT_MIN_REST,
    RMS_FLOOR_SHARE,
    AdaptationSettings,
    Adapter,
    holdout_mask,
    relative_rates,
)
from ugosa_cli.decision import (
    CHECK_EVERY,
    CLEAN_DB,
    MAX_RISE_DB,
    MIN_FALL_DB_PER_STEP,
    PRETRAINED,
    Evidence,
    SourceCheck,
    after_training,
    before_training,
    keeps_falling,
    stop_note,
)
from ugosa_cli.models.convtasnet import ConvTasNet

from conftest import TINY_CONFIG, tone_mix

RATE = TINY_CONFIG.samplerate


def _song(seconds: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """A mix and labels with a 3 s rest of the vocals (long enough to hold part of it out) and a 1 s one of the
    drums (too short)."""
    mix = tone_mix(seconds, RATE, seed=4).T.copy()
    acts = np.ones((4, mix.shape[1]), np.float32)
    acts[3, : 3 * RATE] = 0
    acts[0, 4 * RATE : 5 * RATE] = 0
    return mix, acts


def _fresh(base: ConvTasNet) -> ConvTasNet:
    model = ConvTasNet(base.config)
    model.load_state_dict(base.state_dict())
    return model.eval()


def test_the_middle_of_each_long_rest_is_held_out():
    acts = np.ones((2, 1000), np.float32)
    acts[0, 100:500] = 0  # 400 samples: long enough at 100 Hz (2 s)
    acts[1, 700:790] = 0  # 90 samples: too short
    held = holdout_mask(acts, np.ones(1000, bool), 100, 0.25)
    assert np.flatnonzero(held).tolist() == list(range(250, 350))  # the middle quarter of the long rest
    coverage = np.zeros(1000, bool)
    coverage[:250] = True  # only 150 samples of the rest lie in the windows: too short to hold any out
    assert not holdout_mask(acts, coverage, 100, 0.25).any()
    assert not holdout_mask(acts, np.ones(1000, bool), 100, 0.0).any()
    assert HOLDOUT_MIN_REST == 2.0


def test_what_is_held_out_never_reaches_training(tiny_model):
    """The labels inside the held-out stretch are not seen: labelling the drums silent there changes no update."""
    mix, acts = _song()
    settings = AdaptationSettings(strategy="P-L1:D", steps=3, window=6.0, hop=6.0, guard=0.0, seed=0)
    held = np.flatnonzero(Adapter(_fresh(tiny_model), mix, acts, settings).weights.numpy() == 0)
    assert len(held) == int(round(0.25 * 3 * RATE))  # a quarter of the vocals' 3 s rest; the drums' 1 s is too short
    states = []
    for drums_there in (1.0, 0.0):
        changed = acts.copy()
        changed[0, held[0] : held[-1] + 1] = drums_there
        model = _fresh(tiny_model)
        adapter = Adapter(model, mix, changed, settings)
        assert np.array_equal(np.flatnonzero(adapter.weights.numpy() == 0), held)
        adapter.run()
        states.append(model.state_dict())
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=0, atol=0)


def test_step_sizes_follow_each_tensors_scale():
    small, large, zero = torch.full((10,), 0.01), torch.full((10,), 1.0), torch.zeros(4)
    rates = relative_rates([small, large, zero], 1e-2)
    assert rates[1] == pytest.approx(1e-2)
    floor = 1e-2 * RMS_FLOOR_SHARE * float(torch.cat([small, large, zero]).pow(2).mean().sqrt())
    assert rates[0] == pytest.approx(max(1e-4, floor)) and rates[2] == pytest.approx(floor)
    # A network whose weights are all ten times larger gets rates ten times larger: the same relative steps.
    assert relative_rates([small * 10, large * 10, zero], 1e-2) == pytest.approx([r * 10 for r in rates])


def _evidence(before: float, after: float | None = None, residual: float = -30.0) -> Evidence:
    """Two sources leaking ``before`` (and ``after``) dB, a residual of ``residual`` dB before and after."""
    return Evidence((SourceCheck("vocals", 1.0, before, after), SourceCheck("drums", 1.0, before, after)),
                    residual, None if after is None else residual)


def test_the_error_sums_leakage_and_residual_as_powers():
    evidence = Evidence((SourceCheck("vocals", 1.0, -10.0, -20.0), SourceCheck("drums", 1.0, -30.0, -20.0)), -10.0, -30.0)
    assert evidence.before_db == pytest.approx(10 * np.log10((0.1 + 0.001) / 2))  # the leakiest weighs most
    assert evidence.error_before_db == pytest.approx(10 * np.log10((0.1 + 0.001) / 2 + 0.1))
    assert evidence.error_after_db == pytest.approx(10 * np.log10(0.01 + 0.001))


def test_pretrained_stems_that_already_fit_the_labels_are_not_adapted_to():
    decision = before_training(_evidence(CLEAN_DB - 1))
    assert decision is not None and decision.write == PRETRAINED and "already fit the labels" in decision.reason
    assert before_training(_evidence(CLEAN_DB + 1)) is None
    assert before_training(_evidence(-40.0, residual=CLEAN_DB + 1)) is None  # clean rests, a poor fit: adapt


def test_the_adapted_stems_are_written_unless_the_held_out_error_rises():
    assert after_training(_evidence(-10.0, -12.0)).adapted
    assert after_training(_evidence(-10.0, -10.0 + MAX_RISE_DB / 2)).adapted
    worse = after_training(_evidence(-10.0, -10.0 + 2 * MAX_RISE_DB))
    assert not worse.adapted and "did not help" in worse.reason
    unchecked = after_training(Evidence(()))
    assert unchecked.adapted and not unchecked.checked


def test_training_goes_on_only_while_the_held_out_error_falls_fast_enough():
    steps = 3 * CHECK_EVERY
    fast = _evidence(-10.0, -10.0 - 2 * MIN_FALL_DB_PER_STEP * steps)
    slow = _evidence(-10.0, -10.0 - MIN_FALL_DB_PER_STEP * steps / 2)
    assert keeps_falling(fast, steps) and not keeps_falling(slow, steps)
    assert keeps_falling(slow, CHECK_EVERY // 2)  # the same fall in fewer steps is fast enough
    assert not keeps_falling(_evidence(-10.0, -9.0), steps)  # rising
    assert keeps_falling(Evidence(()), steps)  # nothing measured: nothing to stop on
    note = stop_note(slow, steps, 4 * steps)
    assert note.startswith(f"stopped after {steps} of {4 * steps} steps") and "--holdout 0" in note


@pytest.mark.slow  # 30 steps and checks (about 4 s): CI runs it
def test_training_stops_early_when_the_held_out_error_stops_falling(tiny_model):
    mix, acts = _song()
    planned = 3 * CHECK_EVERY
    # A step so small that the held-out error cannot fall: training stops at the first check.
    settings = AdaptationSettings(strategy="P-L1:D", steps=planned, step=1e-7, window=6.0, hop=6.0, seed=0)
    model = _fresh(tiny_model)
    result = Adapter(model, mix, acts, settings).run()
    assert result.steps == CHECK_EVERY and result.stopped is not None
    assert result.stopped.startswith(f"stopped after {CHECK_EVERY} of {planned} steps")
    assert result.evidence is not None and result.evidence.error_after_db is not None
    assert not keeps_falling(result.evidence, CHECK_EVERY)
    # Nothing held out, nothing checked: every planned step is made.
    unchecked = Adapter(_fresh(tiny_model), mix, acts, dataclasses.replace(settings, holdout=0.0)).run()
    assert unchecked.steps == planned and unchecked.stopped is None


def test_the_check_measures_leakage_where_the_model_never_trained(tiny_model):
    mix, acts = _song()
    settings = AdaptationSettings(strategy="P-L1:D", steps=4, window=6.0, hop=6.0, seed=0)
    adapter = Adapter(_fresh(tiny_model), mix, acts, settings)
    evidence = adapter.check()
    assert evidence is not None and [check.source for check in evidence.checks] == ["vocals"]
    assert evidence.checks[0].seconds == pytest.approx(0.75, abs=1e-3)
    result = adapter.run()
    assert result.evidence is not None and result.evidence.after_db is not None
    assert result.evidence.residual_before_db is not None and result.evidence.residual_after_db is not None
    assert result.decision is not None and result.decision.adapted == (
        result.evidence.error_after_db <= result.evidence.error_before_db + MAX_RISE_DB)


@pytest.fixture
def demo_song(tmp_path):
    """An 8 s song of the demo's synthesizer, each source resting in one quarter (2 s, long enough to hold part
    of each rest out), and its labels as an Audacity file."""
    from ugosa_cli.audio import write_audio
    from ugosa_cli.demo.runner import song_labels
    from ugosa_cli.demo.synth import generate_song
    from ugosa_cli.labels import format_labels

    song = generate_song(1, duration=8.0, timbre=2.0, rests="quarters")
    write_audio(tmp_path / "song.wav", song.mix, song.samplerate, bits=32)
    (tmp_path / "labels.txt").write_text(format_labels(song_labels(song), "audacity"))
    return tmp_path / "song.wav", tmp_path / "labels.txt"


@pytest.mark.slow  # adapts the demo model twice: CI runs it
def test_separate_says_adapting_did_not_help_and_writes_what_the_labels_alone_give(cli, demo_song, tmp_path):
    """Steps of half each weight's scale wreck the model: the held-out check sees it, `separate --labels` says so
    and writes the pretrained stems with the labels applied, the same files as `--strategy B0`; `adapt` still
    saves what it trained, with the same verdict."""
    song, labels = demo_song
    wreck = ("--model", "demo", "--labels", labels, "--step", "0.5", "--steps", "8", "--bits", "32", "--json")
    result = cli("separate", song, *wreck, "-o", tmp_path / "adapted")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    check, decision = record["adaptation"]["check"], record["adaptation"]["decision"]
    assert decision["write"] == "pretrained" and decision["reason"].startswith("adapting did not help")
    assert check["error_after_db"] > check["error_before_db"] + MAX_RISE_DB
    assert "adapting did not help" in " ".join(result.stderr.split())
    alone = cli("separate", song, "--model", "demo", "--labels", labels, "--strategy", "B0", "--bits", "32", "--json",
                "-o", tmp_path / "alone")
    assert alone.exit_code == 0, alone.stderr
    filtered = json.loads(alone.stdout)["stems"]
    for name, path in record["stems"].items():
        np.testing.assert_array_equal(sf.read(path)[0], sf.read(filtered[name])[0])
    kept = cli("adapt", song, *wreck[:-3], "--json", "-o", tmp_path / "wrecked.th")
    assert kept.exit_code == 0 and (tmp_path / "wrecked.th").is_file()
    assert json.loads(kept.stdout)["decision"]["write"] == "pretrained"
    assert "did not help" in " ".join(kept.stderr.split())

"""The packaged demo model, `ugosa demo`, and model-recommended adaptation settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ugosa_cli import demo, hub
from ugosa_cli.checkpoint import save_checkpoint
from ugosa_cli.demo import synth
from ugosa_cli.demo.synth import SOURCES
from ugosa_cli.labels import activation_matrix, guard_silences, read_labels
from ugosa_cli.planning import ADAPTATION_DEFAULTS_KEY, adaptation_defaults

from conftest import tone_mix


@pytest.fixture(scope="module")
def demo_model():
    return hub.resolve_model(demo.DEMO_MODEL, offline=True)


def test_demo_model_ships_in_the_package_with_its_provenance(demo_model):
    entry = hub.REGISTRY[demo.DEMO_MODEL]
    assert entry.packaged and entry.path.is_file()
    assert entry.path.stat().st_size < 5_000_000
    assert demo_model.sha256.startswith(hub.expected_prefix(entry.file))
    assert demo_model.model.sources == SOURCES and demo_model.model.samplerate == 44100
    assert demo_model.model.audio_channels == 2 and demo_model.model.config.R == 4
    provenance = demo_model.provenance
    assert provenance["trained_by"] == "scripts/train_demo_model.py"
    assert set(provenance["validation_sdr_db"]) == set(SOURCES)
    assert adaptation_defaults(provenance) == {}  # it adapts by ugosa's rule, as the released models do


@pytest.fixture(scope="module")
def adapted_run(demo_model):
    """A short held-out song, B0 vs the demo model adapted by the CPU plan with the true labels, the labels then
    applied to its stems (as separate --labels does)."""
    return demo.run_demo(demo_model, seed=1, duration=8.0, resplit=True)


@pytest.mark.slow
def test_adapting_with_true_labels_lowers_the_energy_where_instruments_rest(adapted_run):
    resting = [s for s in adapted_run.scores if s.leakage_before_db is not None]
    assert resting, "the song should have sources that rest"
    energy = lambda db: sum(10 ** (value / 10) for value in db)  # noqa: E731
    before = energy(s.leakage_before_db for s in resting)
    after = energy(s.leakage_after_db for s in resting)
    assert after < 0.8 * before, [(s.source, s.leakage_before_db, s.leakage_after_db) for s in resting]


@pytest.mark.slow
def test_adapting_with_true_labels_raises_mean_sdr_over_b0(adapted_run):
    assert (adapted_run.song.timbre, adapted_run.song.rests) == (demo.HELD_OUT_TIMBRE, demo.HELD_OUT_RESTS)
    assert adapted_run.mean_sdr_after > adapted_run.mean_sdr_before + 0.1, [
        (s.source, s.sdr_before, s.sdr_after) for s in adapted_run.scores]


@pytest.mark.slow
def test_demo_cli_keeps_song_labels_and_stems(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--duration", "3", "--seed", "2", "--out", out, "--json", "--quiet")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert [row["source"] for row in summary["sources"]] == list(SOURCES)
    assert summary["song"]["seed"] == demo.HELD_OUT_SEED_BASE + 2
    for row in summary["sources"]:
        assert np.isfinite(row["sdr_before"]) and np.isfinite(row["sdr_after"])
    mix, rate = sf.read(out / "song.wav", always_2d=True)
    assert rate == 44100 and mix.shape == (3 * 44100, 2)
    true = sum(sf.read(out / "true" / f"{name}.wav", always_2d=True)[0] for name in SOURCES)
    np.testing.assert_allclose(true, mix, atol=1e-5)
    for kind in ("before", "after"):
        assert all((out / kind / f"{name}.wav").is_file() for name in SOURCES)
    labels = read_labels(out / "labels.txt", sources=SOURCES)
    assert labels.sources == SOURCES and not labels.unconstrained


@pytest.mark.slow  # over a second: CI runs it
def test_demo_cli_prints_the_before_after_table(cli):
    result = cli("demo", "--duration", "2", "--strategy", "P-L5:D", "--no-resplit")
    assert result.exit_code == 0, result.stderr
    for word in ("SDR B0", "SDR adapted", "leakage", "P-L5:D", "mean", *SOURCES):
        assert word in result.stdout
    assert "resplit" not in result.stdout  # the filter-only column appears with the filter only
    assert "adapting with P-L5:D" in result.stderr
    assert "rests in quarters" in result.stderr


@pytest.mark.slow  # over a second: CI runs it
def test_demo_cli_resplit_scores_adapted_stems_silent_where_they_rest(cli, tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--duration", "2", "--strategy", "P-L5:D", "--resplit", "--out", out, "--json", "-q")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["resplit"] is True
    untrained = [row["sdr_before_resplit"] for row in summary["sources"]]
    assert all(np.isfinite(untrained)) and summary["mean_sdr_before_resplit"] == pytest.approx(np.mean(untrained))
    rate = sf.info(out / "song.wav").samplerate
    labels = guard_silences(read_labels(out / "labels.txt", sources=SOURCES, duration=2.0), 0.5)
    rows = activation_matrix(labels, rate, sf.info(out / "song.wav").frames)
    window = 2048  # the filter's STFT frame at 44.1 kHz: a sample is silent once no frame over it has the source
    for index, name in enumerate(SOURCES):
        after = sf.read(out / "after" / f"{name}.wav", always_2d=True)[0]
        before = sf.read(out / "before" / f"{name}.wav", always_2d=True)[0]
        resting = np.convolve(rows[index] < 0.5, np.ones(2 * window + 1), mode="same") >= 2 * window + 1
        assert resting.sum() > 0.03 * rate  # each source rests a quarter (~0.5 s): some of it beyond the guard
        assert np.abs(after[resting]).max() == 0 and np.abs(before[resting]).max() > 0


@pytest.mark.slow  # over a second: CI runs it
def test_demo_cli_resplit_table_shows_the_filter_without_training_for_comparison(cli):
    result = cli("demo", "--duration", "2", "--strategy", "P-L5:D")  # the filter by default, as separate --labels
    assert result.exit_code == 0, result.stderr
    assert "B0 vs P-L5:D + resplit" in result.stdout
    header = "".join(line for line in result.stdout.splitlines()[:5])
    assert "B0 +" in header and "resplit" in header


@pytest.mark.parametrize("rests", ["quarters", "sections"])
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_demo_cli_rest_layout_decides_where_the_labels_put_silences(cli, tmp_path, rests):
    out = tmp_path / rests
    result = cli("demo", "--duration", "4", "--rests", rests, "--strategy", "P-L5:D", "--out", out, "--json", "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["song"]["rests"] == rests
    labels = read_labels(out / "labels.txt", sources=SOURCES)
    song = synth.generate_song(demo.HELD_OUT_SEED_BASE, duration=4.0, timbre=demo.HELD_OUT_TIMBRE, rests=rests)
    flat = lambda regions: [t for region in regions for t in region]  # noqa: E731
    for name in SOURCES:
        assert flat(labels.regions[name]) == pytest.approx(flat(song.regions[name]), abs=1e-3)


@pytest.mark.parametrize("args", [("--strategy", "B0"), ("--strategy", "S-L2:D"), ("--duration", "1"), ("--seed", "-1"), ("--rests", "halves")])
def test_demo_cli_rejects_bad_choices(cli, args):
    result = cli("demo", *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


@pytest.fixture
def recommending_model(tmp_path, tiny_model):
    path = tmp_path / "tiny.th"
    recommended = {"strategy": "P-L3:D", "epochs": 3, "lr": 5e-3, "window": 1.0, "hop": 0.5, "optimizer": "adam",
                   "gamma": 4.0, "not_a_setting": 1}
    save_checkpoint(path, tiny_model, {ADAPTATION_DEFAULTS_KEY: recommended})
    song = tmp_path / "song.wav"
    sf.write(song, tone_mix(3.0, 8000, seed=3), 8000)
    labels = tmp_path / "labels.txt"
    labels.write_text("0\t1.5\tvocals\n0\t3\tdrums\n0\t3\tbass\n0\t3\tother\n")
    return path, song, labels


def _plan(cli, model, song, labels, *flags):
    result = cli("adapt", song, "--labels", labels, "--model", model, "--dry-run", "--json", *flags)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["plan"]


def test_adapt_uses_the_model_recommendation_unless_flags_say_otherwise(cli, recommending_model):
    model, song, labels = recommending_model
    plan = _plan(cli, model, song, labels)
    assert plan["strategy"] == "P-L3:D"
    assert {k: plan["settings"][k] for k in ("epochs", "lr", "window", "hop", "optimizer", "gamma")} == {
        "epochs": 3, "lr": 5e-3, "window": 1.0, "hop": 0.5, "optimizer": "adam", "gamma": 4.0}
    given = _plan(cli, model, song, labels, "--strategy", "P-L5:D", "--lr", "1e-4", "--epochs", "2", "--hop", "1")
    assert given["strategy"] == "P-L5:D"
    assert (given["settings"]["lr"], given["settings"]["epochs"], given["settings"]["hop"]) == (1e-4, 2, 1.0)
    assert given["settings"]["window"] == 1.0  # not given: still the model's
    paper = _plan(cli, model, song, labels, "--protocol", "paper")
    assert (paper["strategy"], paper["settings"]["lr"], paper["settings"]["epochs"]) == ("P-L2:D", 1e-5, 10)
    assert paper["settings"]["gamma"] == 1.0

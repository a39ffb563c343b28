"""`ugosa adapt`, `ugosa strategies` and `ugosa separate --labels` end to end with a small model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ugosa_cli.checkpoint import load_model_file
from ugosa_cli.fsutil import sha256_file

from conftest import tone_mix


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    sf.write(path, tone_mix(4.0, 8000, seed=2), 8000)
    labels = tmp_path / "labels.txt"
    labels.write_text("0\t2\tvocals\n1.5\t4\tdrums\n0\t4\tbass\n0\t3\tother\n")  # three of four rest: adapted
    return path, labels


FAST = ("--window", "1", "--epochs", "2", "--lr", "1e-3")


@pytest.mark.slow  # over a second: CI runs it
def test_strategies_json_lists_counts(cli, model_file):
    result = cli("strategies", "--model", model_file, "--json")
    assert result.exit_code == 0, result.stderr
    rows = {row["strategy"]: row for row in json.loads(result.stdout)["strategies"]}
    assert rows["P-L5:D"]["trains"] == "decoder"
    assert rows["P-L5:D"]["trainable_parameters"] == 16 * 2 * 8


@pytest.mark.slow  # among the slowest: CI runs it
def test_adapt_writes_a_checkpoint_with_provenance(cli, model_file, song, tmp_path):
    path, labels = song
    out = tmp_path / "adapted.th"
    result = cli("adapt", path, "--labels", labels, "--model", model_file, "-o", out, "--strategy", "P-L3:D", *FAST, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == str(out)
    assert report["plan"]["strategy"] == "P-L3:D" and len(report["history"]) == 2
    # The middle of the one rest of 2 s or more (the vocals', 2-4 s) is held out: 2.75-3.25 s. "other" rests from
    # 3 s and plays in the same 1 s windows, so it is checked there; the vocals play in none of those windows.
    assert [row["source"] for row in report["check"]["sources"]] == ["other"]
    assert report["decision"]["write"] in ("adapted", "pretrained")
    loaded = load_model_file(out)
    provenance = loaded.provenance
    assert provenance["strategy"] == "P-L3:D"
    assert provenance["song_sha256"] == sha256_file(path)
    assert provenance["labels_sha256"] == sha256_file(labels)
    assert provenance["base_sha256"] == sha256_file(model_file)
    assert provenance["settings"]["epochs"] == 2 and len(provenance["loss_history"]) == 2
    assert provenance["check"] == report["check"]
    # The adapted model separates like any other model file.
    separated = cli("separate", path, "--model", out, "-o", tmp_path / "sep")
    assert separated.exit_code == 0 and "/adapted/song/vocals.wav" in separated.stdout


def test_dry_run_prints_the_plan_and_trains_nothing(cli, model_file, song, tmp_path):
    path, labels = song
    result = cli("adapt", path, "--labels", labels, "--model", model_file, "-o", tmp_path / "x.th", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)["plan"]
    assert plan["strategy"] == "P-L2:D" and plan["steps"] >= 1 and plan["estimated_seconds"] >= 0
    assert "CPU plan" in plan["plan"]
    assert not (tmp_path / "x.th").exists()
    assert "adapting with P-L2:D" in result.stderr


def test_separate_with_labels_adapts_and_gates(cli, model_file, song, tmp_path):
    path, labels = song
    result = cli("separate", path, "--labels", labels, "--model", model_file, "-o", tmp_path / "o", "--gate", "--bits", "32", *FAST, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "tiny-adapted" and report["adaptation"]["plan"]["windows"] == 4
    vocals, _ = sf.read(report["stems"]["vocals"])
    drums, _ = sf.read(report["stems"]["drums"])
    assert np.abs(vocals[int(2.1 * 8000) :]).max() == 0  # vocals labelled silent after 2 s
    assert np.abs(drums[: int(1.4 * 8000)]).max() == 0  # drums labelled silent before 1.5 s
    assert np.abs(vocals[: int(1.9 * 8000)]).max() > 0


@pytest.mark.slow  # over a second: CI runs it
def test_adaptation_does_not_leak_between_songs(cli, model_file, song, tmp_path):
    path, labels = song
    other = tmp_path / "song2.wav"
    sf.write(other, tone_mix(4.0, 8000, seed=9), 8000)
    (tmp_path / "labels").mkdir()
    # The first song's labels rest two sources (filtered, not adapted), the second's three (adapted).
    (tmp_path / "labels" / "song.txt").write_text("0\t2\tvocals\n1.5\t4\tdrums\n")
    (tmp_path / "labels" / "song2.txt").write_text(labels.read_text())
    both = cli("separate", path, other, "--labels", tmp_path / "labels", "--model", model_file, "-o", tmp_path / "b", "--bits", "32", "--seed", "0", *FAST)
    alone = cli("separate", other, "--labels", "{dir}/labels/{track}.txt", "--model", model_file, "-o", tmp_path / "a", "--bits", "32", "--seed", "0", *FAST)
    assert both.exit_code == 0 and alone.exit_code == 0, both.stderr + alone.stderr
    assert "not adapting: the labels give rests for drums, vocals only" in both.stderr
    assert both.stderr.count("adapting with") == 1
    second = [p for p in both.stdout.split() if "/song2/" in p]
    for p, q in zip(second, alone.stdout.split()):
        np.testing.assert_allclose(sf.read(p)[0], sf.read(q)[0], atol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--strategy", "P-L9:D"), "unknown strategy"),
        (("--strategy", "S-L2:D"), "--references"),
        (("--epochs", "0"), "--epochs 0"),
        (("--guard", "-1"), "--guard -1"),
        (("--anchor", "-1"), "--anchor -1"),
        (("--protocol", "fastest"), "--protocol"),
    ],
)
def test_bad_adaptation_options(cli, model_file, song, args, message):
    path, labels = song
    result = cli("adapt", path, "--labels", labels, "--model", model_file, *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_adapt_needs_labels_and_gate_needs_labels(cli, model_file, song):
    path, _ = song
    assert "--labels" in cli("adapt", path, "--model", model_file).stderr
    result = cli("separate", path, "--model", model_file, "--gate")
    assert result.exit_code == 2 and "--gate needs --labels" in result.stderr


def test_adapt_warns_about_a_source_labelled_silent_for_most_of_the_song(cli, model_file, song, tmp_path):
    path, _ = song
    labels = tmp_path / "mostly.txt"
    labels.write_text("3\t4\tvocals\n0\t4\tdrums\n0\t4\tbass\n0\t4\tother\n")  # vocals rest 75 %
    result = cli("adapt", path, "--labels", labels, "--model", model_file, "-o", tmp_path / "a.th", *FAST,
                 "--strategy", "P-L5:D", "--json", "--quiet")
    assert result.exit_code == 0, result.stderr
    warnings = json.loads(result.stdout)["plan"]["warnings"]
    assert len(warnings) == 2 and warnings[0].startswith("vocals is labelled silent for 75% of the song")
    assert warnings[1].startswith("rests labelled for vocals only")  # and it is the only source resting
    assert "ugosa: warning: vocals is labelled silent for 75%" in result.stderr


def test_separate_warns_when_told_to_adapt_from_the_rests_of_one_source(cli, model_file, song, tmp_path):
    path, _ = song
    labels = tmp_path / "vocals.txt"
    labels.write_text("0\t3\tvocals\n")  # the vocals only, as people often label
    result = cli("separate", path, "--labels", labels, "--model", model_file, "-o", tmp_path / "o", *FAST,
                 "--strategy", "P-L5:D", "--json", "--quiet")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)["adaptation"]["plan"]
    assert plan["strategy"] == "P-L5:D" and plan["steps"] > 0 and not plan["resplits"]
    warnings = [w for w in plan["warnings"] if w.startswith("rests labelled for vocals only")]
    assert len(warnings) == 1 and "(drums, bass, other: no labelled rest)" in warnings[0]
    assert "ugosa: warning: rests labelled for vocals only" in result.stderr


def test_labels_that_never_mark_silence_are_refused(cli, model_file, song, tmp_path):
    path, _ = song
    labels = tmp_path / "all.txt"
    labels.write_text("0\t4\tvocals\n0\t4\tdrums\n")
    result = cli("adapt", path, "--labels", labels, "--model", model_file, *FAST)
    assert result.exit_code == 2 and "no source as silent" in result.stderr


def test_supervised_strategy_with_reference_folder(cli, model_file, song, tmp_path):
    path, labels = song
    refs = tmp_path / "refs"
    refs.mkdir()
    for name in ("drums", "bass", "other", "vocals"):
        sf.write(refs / f"{name}.wav", tone_mix(4.0, 8000, seed=2) / 4, 8000)
    out = tmp_path / "s.th"
    result = cli("adapt", path, "--labels", labels, "--model", model_file, "--strategy", "S-L2:D", "--references", refs, "-o", out, *FAST)
    assert result.exit_code == 0, result.stderr
    assert load_model_file(out).provenance["strategy"] == "S-L2:D"


def test_separate_with_labels_follows_the_model_recommendation(cli, tiny_model, song, tmp_path):
    from ugosa_cli.checkpoint import save_checkpoint
    from ugosa_cli.planning import ADAPTATION_DEFAULTS_KEY

    path, labels = song
    model = tmp_path / "recommending.th"
    recommended = {"strategy": "B0", "lr": 5e-3, "window": 1.0, "epochs": 1, "optimizer": "adam", "gamma": 4.0}
    save_checkpoint(model, tiny_model, {ADAPTATION_DEFAULTS_KEY: recommended})
    result = cli("separate", path, "--labels", labels, "--model", model, "-o", tmp_path / "r", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "recommending" and report["adaptation"]["plan"]["strategy"] == "B0"
    given = cli("separate", path, "--labels", labels, "--model", model, "-o", tmp_path / "g", "--strategy", "P-L5:D", "--json")
    assert given.exit_code == 0, given.stderr
    plan = json.loads(given.stdout)["adaptation"]["plan"]
    assert json.loads(given.stdout)["model"] == "recommending-adapted" and plan["strategy"] == "P-L5:D"
    assert (plan["settings"]["lr"], plan["settings"]["window"], plan["settings"]["optimizer"]) == (5e-3, 1.0, "adam")


@pytest.mark.parametrize("schedule", [("--epochs", "3", "--hop", "0.5"), ()], ids=["explicit", "cpu-plan"])
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_separate_with_labels_repeats_and_equals_adapt_then_separate(cli, model_file, tmp_path, schedule):
    """One step (`separate --labels`, the model's own stems) twice, and two steps (`adapt -o` then `separate
    --model`), with the default seed and no held-out check (whose decision `adapt` does not follow): the same
    stems, bit for bit, on a song of several windows and epochs (and on the CPU plan, which must not depend on
    how fast this machine happens to be)."""
    path = tmp_path / "long.wav"
    sf.write(path, tone_mix(6.0, 8000, seed=4), 8000)
    labels = tmp_path / "labels.txt"
    labels.write_text("0\t2.5\tvocals\n1.5\t6\tdrums\n0\t6\tbass\n0\t4\tother\n")
    settings = ("--strategy", "P-L2:D", "--window", "1", "--lr", "1e-3", "--holdout", "0", *schedule)
    stems = []
    for run in ("a", "b"):
        result = cli("separate", path, "--model", model_file, "--labels", labels, *settings, "-o", tmp_path / run,
                     "--no-resplit", "--bits", "32", "--json")
        assert result.exit_code == 0, result.stderr
        record = json.loads(result.stdout)
        assert record["adaptation"]["plan"]["steps"] >= record["adaptation"]["plan"]["windows"] > 1
        stems.append({name: sf.read(p)[0] for name, p in record["stems"].items()})
    adapted = tmp_path / "adapted.th"
    assert cli("adapt", path, "--model", model_file, "--labels", labels, *settings, "-o", adapted).exit_code == 0
    result = cli("separate", path, "--model", adapted, "-o", tmp_path / "two-step", "--bits", "32", "--json")
    assert result.exit_code == 0, result.stderr
    stems.append({name: sf.read(p)[0] for name, p in json.loads(result.stdout)["stems"].items()})
    for which, other in zip(("again", "two steps"), stems[1:]):
        for name, samples in stems[0].items():
            assert np.array_equal(samples, other[name]), (which, name, np.abs(samples - other[name]).max())

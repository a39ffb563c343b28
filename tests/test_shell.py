"""ugosa in shell pipelines and batch runs: results on stdout, progress on stderr, exit codes, --from-list,
--skip-existing, NO_COLOR."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from conftest import tone_mix

UGOSA = Path(sys.executable).parent / "ugosa"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ENV.pop("NO_COLOR", None)
ENV.pop("FORCE_COLOR", None)
STEMS = ("drums", "bass", "other", "vocals")


@pytest.fixture
def songs(tmp_path):
    paths = []
    for name in ("a", "b c"):
        path = tmp_path / f"{name}.wav"
        sf.write(path, tone_mix(0.4, 8000), 8000)
        paths.append(path)
    return paths


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", "set -o pipefail; " + command], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_a_pipe_gets_clean_json_while_stderr_carries_the_progress(tmp_path, model_file, songs):
    listing = "\\n".join(["# my catalogue", str(songs[0]), "", str(songs[1])])
    result = shell(
        f"printf '{listing}\\n' | {UGOSA} separate --from-list - --json --model {model_file} -o out 2>err.log "
        "| cat > results.jsonl",
        tmp_path,
    )
    assert result.returncode == 0, (tmp_path / "err.log").read_text()
    records = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["track"] for r in records] == ["a", "b c"]
    assert all(set(r["stems"]) == set(STEMS) and Path(tmp_path, r["stems"]["vocals"]).is_file() for r in records)
    progress = (tmp_path / "err.log").read_text()
    assert "separating a: 100.0%" in progress and "separating b c: 100.0%" in progress
    assert "\x1b[" not in progress  # not a terminal: plain lines, no bars, no colour


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_jq_picks_one_stem_per_song(tmp_path, model_file, songs):
    quoted = " ".join(shlex.quote(str(s)) for s in songs)
    result = shell(f"{UGOSA} separate {quoted} --json -q --model {model_file} -o out | jq -r .stems.vocals", tmp_path)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert [Path(p).parent.name for p in result.stdout.split("\n") if p] == ["a", "b c"]


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_one_failing_song_fails_the_pipeline_but_keeps_the_others(tmp_path, model_file, songs):
    result = shell(
        f"{UGOSA} separate {shlex.quote(str(songs[0]))} missing.wav --model {model_file} -o out | cat", tmp_path
    )
    assert result.returncode == 1
    assert [Path(p).name for p in result.stdout.split()] == [f"{s}.wav" for s in STEMS]
    assert "ugosa: error: missing.wav: no such file" in result.stderr
    assert result.stderr.rstrip().endswith("1 of 2 tracks failed: missing.wav")


@pytest.mark.parametrize("no_color, coloured", [(None, True), ("1", False), ("", True)])
def test_no_color_turns_colour_off_even_when_forced(cli, monkeypatch, no_color, coloured):
    monkeypatch.setenv("FORCE_COLOR", "1")
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    result = cli("model", "path", "no-such-model")
    assert result.exit_code == 2
    assert ("\x1b[" in result.stderr) is coloured


def test_from_list_file_with_comments_and_positional_tracks(cli, tmp_path, model_file, songs):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# first\n\n  {songs[1]}  \n")
    result = cli("separate", songs[0], "--from-list", listing, "--model", model_file, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["track"] for line in result.stdout.splitlines()] == ["a", "b c"]


def test_from_list_on_stdin(cli, tmp_path, model_file, songs):
    result = cli("separate", "--from-list", "-", "--model", model_file, "-o", tmp_path / "out",
                 stdin=f"{songs[0]}\n".encode())
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.split()) == 4


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (("--from-list", "nowhere.txt"), None, "--from-list nowhere.txt: no such file"),
        (("--from-list", "-"), b"# nothing but comments\n\n", "no tracks to separate"),
        (("-", "--from-list", "-"), b"", "cannot both read stdin"),
    ],
)
def test_from_list_mistakes_are_bad_input(cli, model_file, args, stdin, message):
    result = cli("separate", *args, "--model", model_file, stdin=stdin)
    assert result.exit_code == 2 and message in result.stderr


def test_skip_existing_reruns_only_what_is_missing(cli, tmp_path, model_file, songs):
    out = tmp_path / "out"
    first = cli("separate", songs[0], "--model", model_file, "-o", out, "--json")
    done = json.loads(first.stdout)["stems"]
    stamps = {stem: Path(path).stat().st_mtime_ns for stem, path in done.items()}
    again = cli("separate", *songs, "--model", model_file, "-o", out, "--json", "--skip-existing")
    assert again.exit_code == 0, again.stderr
    skipped, fresh = (json.loads(line) for line in again.stdout.splitlines())
    assert skipped["skipped"] is True and skipped["stems"] == done
    assert fresh["skipped"] is False and all(Path(p).is_file() for p in fresh["stems"].values())
    assert f"skipping {songs[0]}" in again.stderr and "skipping" not in again.stderr.replace(f"skipping {songs[0]}", "")
    assert {stem: Path(path).stat().st_mtime_ns for stem, path in done.items()} == stamps


def test_skip_existing_redoes_a_track_with_a_missing_stem(cli, tmp_path, model_file, songs):
    out = tmp_path / "out"
    paths = cli("separate", songs[0], "--model", model_file, "-o", out).stdout.split()
    Path(paths[-1]).unlink()
    again = cli("separate", songs[0], "--model", model_file, "-o", out, "--skip-existing")
    assert again.stdout.split() == paths and "skipping" not in again.stderr
    assert Path(paths[-1]).is_file()


def test_skip_existing_follows_the_stem_selection(cli, tmp_path, model_file, songs):
    out = tmp_path / "out"
    cli("separate", songs[0], "--model", model_file, "-o", out, "--two-stems", "vocals")
    again = cli("separate", songs[0], "--model", model_file, "-o", out, "--two-stems", "vocals", "--skip-existing")
    assert [Path(p).name for p in again.stdout.split()] == ["vocals.wav", "no_vocals.wav"] and "skipping" in again.stderr
    full = cli("separate", songs[0], "--model", model_file, "-o", out, "--skip-existing")
    assert "skipping" not in full.stderr and len(full.stdout.split()) == 4

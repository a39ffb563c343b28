"""Hostile paths, names, interruptions and downloads, through the command line: each is one clear line with the
right exit code, or just works; nothing is written outside --out, no input changes, no half-written file stays.

Also here: a song's stems are committed as one set (and --skip-existing tells a mixed set), the leftovers of
killed runs are swept, result paths are printed so that a shell finds the real file, a download has a deadline.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_hard_inputs import (  # noqa: F401 - labels_file is a fixture
    FAST_ADAPT,
    SUBPROCESS_ENV,
    UGOSA,
    assert_nothing_half_written,
    assert_one_clear_error,
    files_under,
    labels_file,
)
from test_hub import hashed_name, hub_env, leftovers, model_bytes, publish, server  # noqa: F401 - fixtures

from ugosa_cli import fsutil, pipeline
from ugosa_cli.cli import separate_cmd

from conftest import tone_mix

STEMS = ("drums", "bass", "other", "vocals")


def _song(folder: Path, name: str = "song.wav", seconds: float = 0.3, rate: int = 8000) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), tone_mix(seconds, rate), rate)  # bytes: a name need not be UTF-8
    return path


def _marks(paths: list[Path]) -> set[str]:
    """The set marks the stems carry (their comment tag)."""
    marks = set()
    for path in paths:
        with sf.SoundFile(path) as handle:
            marks.add(handle.comment)
    return marks


def _bash_finds(line: str) -> bool:
    """Whether bash, given a result line as a word, names an existing file."""
    return subprocess.run(["bash", "-c", f"test -f {line}"], check=False).returncode == 0


# ---------------------------------------------------------------- paths the operating system refuses


@pytest.mark.parametrize("where", ["song", "--out", "--out below", "--labels", "adapt -o"])
def test_a_symlink_loop_wherever_a_path_goes_is_one_clear_line(cli, tmp_path, model_file, labels_file, where):
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    song = _song(tmp_path)
    out = tmp_path / "out"
    args = {
        "song": ("separate", loop, "--model", model_file, "-o", out),
        "--out": ("separate", song, "--model", model_file, "-o", loop),
        "--out below": ("separate", song, "--model", model_file, "-o", loop / "stems"),
        "--labels": ("separate", song, "--model", model_file, "-o", out, "--labels", loop, *FAST_ADAPT),
        "adapt -o": ("adapt", song, "--model", model_file, "--labels", labels_file, "-o", loop, *FAST_ADAPT),
    }[where]
    before = {path: path.read_bytes() for path in (song, labels_file, model_file)}
    result = cli(*args)
    assert result.exit_code == 2 and result.stdout == ""
    assert_one_clear_error(result, str(loop), "symbolic link loop", "remove or fix the link")
    assert files_under(out) == [] and loop.is_symlink()
    assert {path: path.read_bytes() for path in before} == before


def test_a_nul_byte_in_a_track_list_or_a_url_is_one_clear_line(cli, tmp_path, model_file, monkeypatch):
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    song = _song(tmp_path)
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{song}\n{song}\x00.wav\n".encode())
    out = tmp_path / "out"
    listed = cli("separate", "--from-list", listing, "--model", model_file, "-o", out)
    assert listed.exit_code == 2
    assert_one_clear_error(listed, "--from-list", "line 2", "NUL byte")
    url = cli("separate", song, "--model", "http://127.0.0.1:9/model%00.th", "-o", out)
    assert url.exit_code == 2
    assert_one_clear_error(url, "model%00.th", "NUL byte", "check the URL")
    assert files_under(out) == [] and files_under(tmp_path / "cache") == []


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="needs a file system that takes any bytes in names")
def test_a_song_whose_name_is_not_utf8_separates_and_its_paths_lead_to_the_files(cli, tmp_path, model_file):
    song = _song(tmp_path, os.fsdecode(b"\xff\xfe.wav"))
    out = tmp_path / "out"
    plain = cli("separate", song, "--model", model_file, "-o", out)
    assert plain.exit_code == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines == [f"$'{out}/tiny/\\xff\\xfe/{stem}.wav'" for stem in STEMS]
    assert all(_bash_finds(line) for line in lines)
    record = json.loads(cli("separate", song, "--model", model_file, "-o", out, "--json").stdout)
    assert record["stems"]["vocals"] == str(out / "tiny" / os.fsdecode(b"\xff\xfe") / "vocals.wav")
    assert all(Path(path).is_file() for path in record["stems"].values())


def test_a_seed_of_any_size_adapts_as_it_separates(cli, tmp_path, model_file, labels_file):
    song = _song(tmp_path, seconds=1.0)
    huge = str(10**30)
    adapted = cli("adapt", song, "--model", model_file, "--labels", labels_file, "-o", tmp_path / "a.th",
                  "--seed", huge, *FAST_ADAPT)
    assert adapted.exit_code == 0, adapted.stderr
    assert (tmp_path / "a.th").is_file()


# ---------------------------------------------------------------- names checked before the work


def test_names_longer_than_the_file_system_allows_are_refused_before_any_work(cli, tmp_path, model_file,
                                                                               labels_file):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    song = _song(tmp_path, seconds=1.0)
    out = tmp_path / "out"
    out.mkdir()
    too_long = out / ("m" * (limit - 2) + ".th")
    refused = cli("adapt", song, "--model", model_file, "--labels", labels_file, "-o", too_long, *FAST_ADAPT)
    assert refused.exit_code == 2
    assert_one_clear_error(refused, f"a name of {limit + 1} bytes", f"the {limit} this file system allows", "--out")
    assert "adapting" not in refused.stderr
    converted = cli("labels", "convert", labels_file, "-o", out / ("l" * limit + ".txt"))
    assert converted.exit_code == 2
    assert_one_clear_error(converted, f"the {limit} this file system allows", "--output")
    template = "{track}-{stem}-" + "t" * (limit - 10) + ".{ext}"
    separated = cli("separate", song, "--model", model_file, "-o", out, "--filename", template)
    assert separated.exit_code == 2
    assert_one_clear_error(separated, f"the {limit} this file system allows", "--filename")
    assert "separating" not in separated.stderr
    assert files_under(out) == []
    # A name that fits works, though its hidden temporary name (18 bytes longer) must be shortened.
    fits = out / ("m" * (limit - 3) + ".th")
    adapted = cli("adapt", song, "--model", model_file, "--labels", labels_file, "-o", fits, *FAST_ADAPT)
    assert adapted.exit_code == 0, adapted.stderr
    assert files_under(out) == [fits]


# ---------------------------------------------------------------- a song's stems are one set


def test_ctrl_c_while_the_stems_are_renamed_still_commits_the_whole_set(cli, tmp_path, model_file, monkeypatch):
    song = _song(tmp_path)
    out = tmp_path / "out"
    first = cli("separate", song, "--model", model_file, "-o", out)
    assert first.exit_code == 0, first.stderr
    stems = [Path(line) for line in first.stdout.splitlines()]
    (old,) = _marks(stems)
    replace = os.replace
    renamed = []

    def slow_replace(source, target):  # Ctrl-C right after the first stem is renamed
        replace(source, target)
        renamed.append(target)
        if len(renamed) == 1:
            # To this thread: os.kill on the process may reach one of torch's threads instead, and the signal
            # then arrives after the renames when the machine is busy (seen once in a full CI run).
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.05)

    monkeypatch.setattr(fsutil.os, "replace", slow_replace)
    original = song.read_bytes()
    # Ctrl-C meets Python's own handler, as in a fresh ugosa process, whatever earlier tests left in this one.
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stopped = cli("separate", song, "--model", model_file, "-o", out, "--shifts", "1", "--seed", "3")
    finally:
        signal.signal(signal.SIGINT, before)
    assert song.read_bytes() == original
    assert stopped.exit_code == 130 and stopped.stderr.splitlines()[-1] == "ugosa: interrupted", (
        f"SIGINT handler before: {before!r}; renamed {len(renamed)}")
    assert len(renamed) == 4
    (new,) = _marks(stems)  # all four from the second run
    assert new != old and new.startswith("ugosa stem set ")
    assert_nothing_half_written(out)


def test_skip_existing_separates_a_mixed_set_again_and_skips_a_whole_one(cli, tmp_path, model_file):
    song = _song(tmp_path, seconds=0.1)
    out = tmp_path / "out"
    stems = out / "tiny" / "song"
    assert cli("separate", song, "--model", model_file, "-o", out).exit_code == 0
    shutil.copy(stems / "drums.wav", tmp_path / "earlier-drums.wav")
    assert cli("separate", song, "--model", model_file, "-o", out).exit_code == 0
    shutil.copy(tmp_path / "earlier-drums.wav", stems / "drums.wav")  # as a commit cut short (a crash) leaves them
    assert len(_marks([stems / f"{stem}.wav" for stem in STEMS])) == 2
    again = cli("separate", song, "--model", model_file, "-o", out, "--skip-existing", "--json")
    assert again.exit_code == 0, again.stderr
    assert "separating " + str(song) + " again: its stems come from different runs" in again.stderr
    assert json.loads(again.stdout)["skipped"] is False
    assert len(_marks([stems / f"{stem}.wav" for stem in STEMS])) == 1
    skipped = cli("separate", song, "--model", model_file, "-o", out, "--skip-existing", "--json")
    assert json.loads(skipped.stdout)["skipped"] is True and "exist already" in skipped.stderr


def test_stale_temporaries_of_killed_runs_are_swept_and_live_ones_kept(cli, tmp_path, model_file):
    song = _song(tmp_path)
    folder = tmp_path / "out" / "tiny" / "song"
    folder.mkdir(parents=True)
    old = time.time() - 2 * fsutil.STALE_AFTER_S
    names = {"stale": ".drums.wav.0badc0de.partial", "held": ".bass.wav.12345678.partial",
             "fresh": ".other.wav.abcdef01.partial", "users": ".notes.partial"}
    for kind, name in names.items():
        (folder / name).write_bytes(b"half a stem")
        if kind != "fresh":
            os.utime(folder / name, (old, old))
    held = os.open(folder / names["held"], os.O_RDONLY)  # a run still writing it holds its lock
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        result = cli("separate", song, "--model", model_file, "-o", tmp_path / "out")
    finally:
        os.close(held)
    assert result.exit_code == 0, result.stderr
    left = sorted(path.name for path in folder.iterdir())
    assert left == sorted([names["held"], names["fresh"], names["users"]] + [f"{stem}.wav" for stem in STEMS])


# ---------------------------------------------------------------- what reaches the terminal


def test_a_result_path_with_a_bidi_override_is_printed_so_a_shell_finds_it(cli, tmp_path, model_file):
    song = _song(tmp_path)
    out = tmp_path / "evil\u202etxt.exe"
    plain = cli("separate", song, "--model", model_file, "-o", out, "--stems", "vocals")
    assert plain.exit_code == 0, plain.stderr
    (line,) = plain.stdout.splitlines()
    assert line == f"$'{tmp_path}/evil\\u202etxt.exe/tiny/song/vocals.wav'" and "\u202e" not in line
    assert _bash_finds(line)
    record = json.loads(cli("separate", song, "--model", model_file, "-o", out, "--stems", "vocals", "--json").stdout)
    assert record["stems"]["vocals"] == str(out / "tiny" / "song" / "vocals.wav")


@pytest.mark.parametrize("flag, value", [("--threshold", "3"), ("--min-share", "5"), ("--presence", "1")])
def test_draft_errors_name_the_flag_given(cli, tmp_path, flag, value):
    result = cli("labels", "draft", _song(tmp_path), "--model", "demo", flag, value)
    assert result.exit_code == 2
    assert_one_clear_error(result, f"{flag} {value}: must be a negative number of dB")


def test_a_one_sample_song_is_one_clear_line_without_a_library_warning(cli, tmp_path, model_file, labels_file):
    song = tmp_path / "one.wav"
    sf.write(song, np.full((1, 2), 0.1, np.float32), 8000)
    result = cli("separate", song, "--model", model_file, "--labels", labels_file, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert_one_clear_error(result, "too short to adapt on", "1 samples", "at least")
    assert "Warning" not in result.stderr and ".py:" not in result.stderr


def test_a_library_warning_is_one_ugosa_line(cli, tmp_path, model_file, monkeypatch):
    pick_device = separate_cmd.pick_device

    def warning_device(device):
        warnings.warn("something odd (Triggered internally at /build/aten/Some.cpp:12.)", UserWarning, stacklevel=1)
        return pick_device(device)

    monkeypatch.setattr(separate_cmd, "pick_device", warning_device)
    result = cli("separate", _song(tmp_path), "--model", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert "ugosa: warning: something odd\n" in result.stderr
    assert "UserWarning" not in result.stderr and "Some.cpp" not in result.stderr and ".py:" not in result.stderr


def test_a_window_too_short_says_so(cli, tmp_path, model_file, labels_file):
    song = _song(tmp_path, seconds=1.0)
    result = cli("adapt", song, "--model", model_file, "--labels", labels_file, "-o", tmp_path / "a.th",
                 "--window", "0.0001")
    assert result.exit_code == 2
    assert_one_clear_error(result, "--window 0.0001", "use 0.1 to 60 seconds")
    assert "song is too short" not in result.stderr and not (tmp_path / "a.th").exists()


@pytest.mark.slow  # a bench run scores a track
def test_bench_progress_lines_escape_the_track_name(cli, tmp_path, model_file):
    track = tmp_path / "musdb" / "test" / "evil\x1b[2J\u202etrack"
    for name in ("mixture", *STEMS):
        _song(track, f"{name}.wav", seconds=1.0, rate=44100)
    result = cli("bench", "--musdb", tmp_path / "musdb", "-o", tmp_path / "b", "--strategies", "B0",
                 "--model", model_file, "--eval-win", "0.5", "--eval-hop", "0.5")
    assert result.exit_code == 0, result.stderr
    assert "evil\\x1b[2J\\u202etrack · B0" in result.stderr
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr + result.stdout


@pytest.mark.slow  # a subprocess that imports PyTorch
@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="watches the process's libraries in /proc")
def test_ctrl_c_while_python_loads_is_a_quiet_exit_130(tmp_path):
    process = subprocess.Popen([str(UGOSA), "model", "list"], env=SUBPROCESS_ENV, text=True, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if "libtorch" in maps.read_text():  # PyTorch is being loaded
                break
        except OSError:
            pass
        time.sleep(0.002)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr == "ugosa: interrupted\n" and stdout == ""


# ---------------------------------------------------------------- the output folder changing under a run


def _link_during_adaptation(monkeypatch, tmp_path: Path, make_link) -> tuple[Path, Path, Path]:
    """A song, an output folder and a folder elsewhere; once the model is adapted, ``make_link(output, elsewhere)``
    runs, as another process could at that moment."""
    song = _song(tmp_path, seconds=1.0)
    folder, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    adapt = pipeline.GuidedSeparator.adapt

    def adapt_then_link(self, plan, progress=None, **options):
        result = adapt(self, plan, progress, **options)
        make_link(folder, elsewhere)
        return result

    monkeypatch.setattr(pipeline.GuidedSeparator, "adapt", adapt_then_link)
    return song, folder, elsewhere


def test_a_link_made_under_out_during_adaptation_sends_no_stem_outside(cli, tmp_path, model_file, labels_file,
                                                                      monkeypatch):
    song, out, elsewhere = _link_during_adaptation(
        monkeypatch, tmp_path, lambda out, elsewhere: (out / "tiny-adapted").symlink_to(elsewhere))
    result = cli("separate", song, "--model", model_file, "--labels", labels_file, "--strategy", "P-L1:D", "-o",
                 out, *FAST_ADAPT)
    assert result.exit_code == 2 and result.stdout == ""
    assert_one_clear_error(result, str(elsewhere), f"outside --out {out}", "remove the link")
    assert files_under(elsewhere) == [] and files_under(out) == []


def test_a_folder_swapped_for_a_link_during_adaptation_gets_no_model(cli, tmp_path, model_file, labels_file,
                                                                    monkeypatch):
    def swap(models: Path, elsewhere: Path) -> None:
        models.rename(tmp_path / "models-before")
        models.symlink_to(elsewhere)

    song, models, elsewhere = _link_during_adaptation(monkeypatch, tmp_path, swap)
    result = cli("adapt", song, "--model", model_file, "--labels", labels_file, "-o", models / "a.th", *FAST_ADAPT)
    assert result.exit_code == 2 and result.stdout == ""
    assert_one_clear_error(result, "a.th", str(elsewhere), "remove the link")
    assert files_under(elsewhere) == [] and files_under(tmp_path / "models-before") == []


# ---------------------------------------------------------------- downloads


def test_a_download_that_trickles_stops_at_the_deadline(cli, tmp_path, server, hub_env, tiny_model, monkeypatch):
    content = model_bytes(tiny_model, tmp_path)
    name = hashed_name("slow", content)
    server.files[f"share/{name}"] = content
    server.chunk_pause = 0.3  # a piece every 0.3 s: no read ever waits long enough for the socket timeout
    song = _song(tmp_path)
    monkeypatch.setenv("UGOSA_DOWNLOAD_TIMEOUT", "nan")
    refused = cli("separate", song, "--model", server.url(f"share/{name}"), "-o", tmp_path / "out")
    assert refused.exit_code == 2
    assert_one_clear_error(refused, "UGOSA_DOWNLOAD_TIMEOUT='nan'", "positive number")
    monkeypatch.setenv("UGOSA_DOWNLOAD_TIMEOUT", "0.2")
    began = time.monotonic()
    result = cli("separate", song, "--model", server.url(f"share/{name}"), "-o", tmp_path / "out")
    assert time.monotonic() - began < 2  # the whole body would take 2.4 s
    assert result.exit_code == 1
    assert_one_clear_error(result, "not finished after 0.2 s", "UGOSA_DOWNLOAD_TIMEOUT=SECONDS", "--model")
    assert leftovers(hub_env) == [] and files_under(tmp_path / "out") == []


def test_a_cached_model_failing_its_hash_is_removed_and_fetched_again(cli, tmp_path, server, hub_env, publish):
    file, content = publish()
    song = _song(tmp_path)
    assert cli("model", "download", "tasnet").exit_code == 0
    (hub_env / file).write_bytes(content[:100])  # cut or damaged on disk
    result = cli("separate", song, "--model", "tasnet", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert_one_clear_error(result, str(hub_env / file), "removed from the model cache", "run the command again")
    assert leftovers(hub_env) == []
    again = cli("separate", song, "--model", "tasnet", "-o", tmp_path / "out")
    assert again.exit_code == 0, again.stderr
    assert (hub_env / file).read_bytes() == content


def test_a_downloaded_file_that_does_not_load_names_its_path_and_the_command_to_remove_it(cli, tmp_path, server,
                                                                                          hub_env):
    server.files["share/notamodel.th"] = b"<html>not found</html>"
    url = server.url("share/notamodel.th")
    song = _song(tmp_path)
    result = cli("separate", song, "--model", url, "-o", tmp_path / "out")
    assert result.exit_code == 2
    cached = next(hub_env.rglob("notamodel.th"))
    assert_one_clear_error(result, str(cached), f"ugosa model remove {url}", f"rm {cached}")
    removed = cli("model", "remove", url)
    assert removed.exit_code == 0 and not cached.exists()


# ---------------------------------------------------------------- options that were silently ignored


def test_an_output_file_name_ending_in_a_slash_is_refused(cli, tmp_path, model_file, labels_file):
    song = _song(tmp_path, seconds=1.0)
    adapt = cli("adapt", song, "--model", model_file, "--labels", labels_file, "-o", "newdir/", *FAST_ADAPT)
    assert adapt.exit_code == 2
    assert_one_clear_error(adapt, "--out 'newdir/'", "names a folder", "newdir/song-adapted.th")
    convert = cli("labels", "convert", labels_file, "-o", "newdir/")
    assert convert.exit_code == 2
    assert_one_clear_error(convert, "--output 'newdir/'", "names a folder")
    assert not (tmp_path / "newdir").exists()


@pytest.mark.parametrize(
    "options, words",
    [
        (("--two-stems", "vocals", "--stems", "drums"), ("--two-stems vocals and --stems drums", "give one")),
        (("--stems", ""), ("--stems ''", "names no stem")),
        (("--stems", " , "), ("--stems ' , '", "names no stem")),
        (("--mp3", "--bits", "24"), ("--bits 24 does not apply to MP3", "leave --bits out")),
        (("--format", "mp3", "--bits", "16"), ("--bits 16 does not apply to MP3",)),
    ],
)
def test_options_that_would_be_ignored_are_refused(cli, tmp_path, model_file, options, words):
    result = cli("separate", _song(tmp_path), "--model", model_file, "-o", tmp_path / "out", *options)
    assert result.exit_code == 2
    assert_one_clear_error(result, *words)
    assert files_under(tmp_path / "out") == []


@pytest.mark.parametrize("rate", [1, 7999, 1_000_000])
def test_a_sample_rate_no_audio_has_is_refused(cli, tmp_path, model_file, labels_file, rate):
    song = tmp_path / "odd.wav"
    sf.write(song, tone_mix(0.05, 8000), rate)
    for command in ("separate", "adapt"):
        extra = ("--labels", labels_file, "-o", tmp_path / "a.th") if command == "adapt" else ("-o", tmp_path / "out")
        result = cli(command, song, "--model", model_file, *extra)
        assert result.exit_code == 2
        assert_one_clear_error(result, str(song), f"sample rate of {rate} Hz", "8000 to 768000 Hz")
    assert files_under(tmp_path / "out") == [] and not (tmp_path / "a.th").exists()


def test_stems_of_different_rates_or_lengths_are_refused_or_warned_about(cli, tmp_path, model_file):
    folder = tmp_path / "stems"
    for stem in STEMS:
        _song(folder, f"{stem}.wav", seconds=1.0 + 0.5 * (stem == "bass"), rate=8000)
    trimmed = cli("labels", "from-stems", folder)
    assert trimmed.exit_code == 0, trimmed.stderr
    assert "ugosa: warning: stems differ in length; all are trimmed to the shortest, 1.000 s" in trimmed.stderr
    assert "1.000" in trimmed.stdout or "1.0" in trimmed.stdout
    _song(folder, "bass.wav", seconds=1.0, rate=16000)
    refused = cli("labels", "from-stems", folder)
    assert refused.exit_code == 2
    assert_one_clear_error(refused, "different sample rates", "bass 16000 Hz", "resample them to one rate")


def test_reference_stems_that_do_not_fit_the_song_are_named_when_adapting(cli, tmp_path, model_file, labels_file):
    song = _song(tmp_path, seconds=1.0)
    references = tmp_path / "refs"
    for stem in STEMS:
        _song(references, f"{stem}.wav", seconds=1.0 if stem != "vocals" else 0.5, rate=8000 if stem != "bass" else 16000)
    result = cli("adapt", song, "--model", model_file, "--labels", labels_file, "--references", references,
                 "--strategy", "S-L1:D", "--dry-run", *FAST_ADAPT)
    assert result.exit_code == 0, result.stderr
    assert f"{references / 'vocals.wav'}: 0.500 s zero-padded to the song's 1.000 s" in result.stderr
    assert f"{references / 'bass.wav'}: resampled from 16000 Hz to the song's 8000 Hz" in result.stderr

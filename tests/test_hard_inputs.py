"""Hard inputs for `ugosa separate` and `ugosa adapt`: each fails with one clear line, or works, and never leaves
a half-written file behind.

Covered elsewhere, not repeated here: an interrupted download, a stalled server and an https -> http redirect
(tests/test_hub.py: test_connection_dropped_halfway_leaves_no_file, test_a_stalled_server_times_out_without_leaving_a_file,
test_redirect_from_https_to_http_is_refused); NaN samples (tests/test_separate_cli.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ugosa_cli.checkpoint import save_checkpoint
from ugosa_cli.models.convtasnet import ConvTasNet

from conftest import TINY_CONFIG, tone_mix

UGOSA = Path(sys.executable).parent / "ugosa"
FAST_ADAPT = ("--epochs", "1", "--window", "0.5", "--hop", "0.5")
# One torch thread: small models run faster, and CI machines are shared.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NO_COLOR": "1"}


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("0.0\t0.5\tvocals\n0.3\t1.0\tdrums\n")
    return path


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_nothing_half_written(folder: Path) -> None:
    partial = [p for p in files_under(folder) if p.name.endswith(".partial")]
    assert not partial, f"half-written files left behind: {partial}"


def assert_one_clear_error(result, *words: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.startswith("ugosa: error:")]
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in result.stderr


def _bad_file(folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        sf.write(path, tone_mix(0.5, 8000), 8000)
        path.write_bytes(path.read_bytes()[:30])  # cut inside the format chunk
    elif kind == "not-audio":
        path.write_text("Title,Artist\nHalo,Beyonce\n")
    elif kind == "zero-samples":
        sf.write(path, np.zeros((0, 2), np.float32), 8000)
    return path


@pytest.mark.parametrize("command", ["separate", "adapt"])
@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", "no such file"),
        ("empty", "empty"),
        ("truncated", "cannot read audio"),
        ("not-audio", "cannot read audio"),
        ("zero-samples", "no samples"),
    ],
)
def test_unreadable_audio_is_bad_input_and_writes_nothing(cli, tmp_path, model_file, labels_file, command, kind,
                                                          message):
    song = _bad_file(tmp_path, kind)
    out = tmp_path / "out"
    args = ("-o", out) if command == "separate" else ("-o", out / "adapted.th", "--labels", labels_file)
    result = cli(command, song, "--model", model_file, *args, *FAST_ADAPT[: 2 if command == "adapt" else 0])
    assert result.exit_code == 2 and result.stdout == ""
    assert_one_clear_error(result, str(song), message)
    assert files_under(out) == []


def test_a_wav_cut_in_its_samples_separates_the_samples_it_holds(cli, tmp_path, model_file):
    """Like most players, ugosa reads what a cut file holds (libsndfile does not report the cut)."""
    song = tmp_path / "cut.wav"
    sf.write(song, tone_mix(1.0, 8000), 8000, subtype="PCM_16")
    song.write_bytes(song.read_bytes()[: 44 + 4 * 3000])
    result = cli("separate", song, "--model", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert {sf.info(path).frames for path in result.stdout.split()} == {3000}


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_24", "FLOAT", "DOUBLE"])
def test_wav_sample_formats_separate_at_the_input_shape(cli, tmp_path, model_file, subtype):
    song = tmp_path / f"{subtype}.wav"
    sf.write(song, tone_mix(0.3, 8000), 8000, subtype=subtype)
    result = cli("separate", song, "--model", model_file, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.stderr
    stems = json.loads(result.stdout)["stems"]
    for path in stems.values():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames) == (8000, 2, 2400)
        assert np.abs(sf.read(path)[0]).max() > 0  # not silence: the 8-bit offset and scale were decoded


def test_six_channels_need_downmix(cli, tmp_path, model_file, labels_file):
    song = tmp_path / "surround.wav"
    sf.write(song, tone_mix(0.3, 8000, channels=6), 8000)
    out = tmp_path / "out"
    refused = cli("separate", song, "--model", model_file, "-o", out)
    assert refused.exit_code == 2
    assert_one_clear_error(refused, "6 channels", "--downmix")
    adapt = cli("adapt", song, "--labels", labels_file, "--model", model_file, "-o", out / "a.th", *FAST_ADAPT)
    assert adapt.exit_code == 2 and "--downmix" in adapt.stderr
    assert files_under(out) == []
    mixed = cli("separate", song, "--model", model_file, "-o", out, "--downmix")
    assert mixed.exit_code == 0, mixed.stderr
    assert all(sf.info(path).channels == 2 for path in mixed.stdout.split())


@pytest.mark.parametrize("model_rate", [8000, 44100])
@pytest.mark.parametrize("rate", [8000, 192000])
def test_extreme_sample_rates_are_resampled_both_ways(cli, tmp_path, rate, model_rate):
    torch.manual_seed(0)
    model = tmp_path / "model.th"
    config = TINY_CONFIG.__class__(**{**TINY_CONFIG.to_dict(), "samplerate": model_rate})
    save_checkpoint(model, ConvTasNet(config).eval())
    song = tmp_path / "song.wav"
    sf.write(song, tone_mix(0.25, rate, channels=1), rate)
    result = cli("separate", song, "--model", model, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    for path in result.stdout.split():
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames) == (rate, 1, int(0.25 * rate))


def test_labels_of_another_song_are_refused_not_trained_to_silence(cli, tmp_path, model_file, write_wav):
    song = write_wav("short.wav", seconds=1.0)
    labels = tmp_path / "other-song.txt"
    labels.write_text("95\t120\tvocals\n130\t150\tdrums\n200\t210\tbass\n")
    out = tmp_path / "out"
    for args in (("adapt", song, "-o", out / "a.th"), ("separate", song, "-o", out, "--gate")):
        result = cli(*args, "--labels", labels, "--model", model_file, *FAST_ADAPT)
        assert result.exit_code == 2
        assert "reach past the end of the song" in result.stderr
        assert_one_clear_error(result, "other-song.txt", "plays anywhere in the song")
    assert files_under(out) == []


def test_paths_with_spaces_and_unicode(cli, tmp_path, model_file):
    folder = tmp_path / "my songs – live"
    folder.mkdir()
    songs = [folder / "Beyoncé Halo (live).wav", folder / "ÉÀ 中文 ♫.flac"]
    for song in songs:
        sf.write(song, tone_mix(0.2, 8000), 8000)
        (folder / f"{song.stem}.txt").write_text("0\t0.1\tvocals\n", encoding="utf-8")
    out = tmp_path / "sortie ü"
    result = cli("separate", *songs, "--model", model_file, "-o", out, "--json",
                 "--labels", "{dir}/{track}.txt", "--strategy", "B0")
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["track"] for r in records] == [song.stem for song in songs]
    for record in records:
        assert all(Path(path).is_file() and str(out) in path for path in record["stems"].values())


def test_output_under_a_regular_file(cli, tmp_path, model_file, labels_file, write_wav):
    song = write_wav(seconds=0.2)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    separate = cli("separate", song, "--model", model_file, "-o", blocker / "out")
    assert separate.exit_code == 1
    assert_one_clear_error(separate, "cannot write", "a-file")
    adapt = cli("adapt", song, "--labels", labels_file, "--model", model_file, "-o", blocker / "a.th", *FAST_ADAPT)
    assert adapt.exit_code == 1
    assert_one_clear_error(adapt, "cannot write", "a-file")
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs Linux /sys, which refuses new files even to root")
def test_output_where_nobody_may_write(cli, model_file, labels_file, write_wav):
    """/sys refuses new files even to root (permission denied, or read-only file system in some containers)."""
    song = write_wav(seconds=0.2)
    separate = cli("separate", song, "--model", model_file, "-o", "/sys/ugosa-out")
    adapt = cli("adapt", song, "--labels", labels_file, "--model", model_file, "-o", "/sys/ugosa-out.th", *FAST_ADAPT)
    for result in (separate, adapt):
        assert result.exit_code == 2
        assert_one_clear_error(result, "cannot write to /sys", "choose another output folder")
        assert "permission denied" in result.stderr or "read-only file system" in result.stderr


def _run_ugosa(*args: object, preexec=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(UGOSA), *map(str, args)], capture_output=True, text=True, env=SUBPROCESS_ENV,
                          preexec_fn=preexec, timeout=120, **kwargs)


def _disk_full_after(size: int):
    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@pytest.mark.slow
def test_full_disk_is_a_run_time_failure_and_leaves_no_partial_file(tmp_path, model_file, write_wav):
    song = write_wav(seconds=0.5)
    out = tmp_path / "out"
    result = _run_ugosa("separate", song, "--model", model_file, "-o", out, preexec=_disk_full_after(4096))
    assert result.returncode == 1 and result.stdout == ""
    assert_one_clear_error(result, "cannot write audio")
    assert files_under(out) == []


class _RunsCode:
    """Unpickling this calls os.system: a model file that would run a command if loaded unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["separate", "adapt"])
def test_a_checkpoint_that_runs_code_is_refused_and_never_run(cli, tmp_path, labels_file, write_wav, command):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.th"
    torch.save({"state_dict": _RunsCode(marker)}, evil)
    song = write_wav(seconds=0.2)
    extra = ("--labels", labels_file, "-o", tmp_path / "a.th") if command == "adapt" else ("-o", tmp_path / "out")
    result = cli(command, song, "--model", evil, *extra)
    assert result.exit_code == 2
    assert_one_clear_error(result, "evil.th", "refused")
    assert not marker.exists()


def _default_sigint() -> None:
    """In the child, before ugosa starts: SIGINT raises KeyboardInterrupt however the suite was launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(args: list[object], cwd: Path, ready: str) -> subprocess.CompletedProcess:
    """Run ugosa, send SIGINT once ``ready`` shows on stderr, and return the finished process.

    The child starts with SIGINT's default disposition: a suite started from a shell script's background job
    ignores SIGINT (the shell does that to background jobs), and a child would inherit that and never stop.
    """
    process = subprocess.Popen([str(UGOSA), *map(str, args)], cwd=cwd, env=SUBPROCESS_ENV, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_default_sigint)
    stderr = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        stderr.append(line)
        if ready in line:
            process.send_signal(signal.SIGINT)
            break
    # The rest through the same reader: readline may already hold the next lines in its buffer, which
    # communicate() (reading the pipe itself) would skip. stdout is a line or two, so it cannot fill its pipe.
    rest = process.stderr.read()
    stdout = process.stdout.read()
    process.wait(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, "".join(stderr) + rest)


@pytest.mark.slow
def test_ctrl_c_during_separation_exits_130_and_leaves_no_partial_file(tmp_path, model_file):
    song = tmp_path / "long.wav"
    sf.write(song, tone_mix(30.0, 8000), 8000)
    out = tmp_path / "out"
    # many shifts: the separation runs for minutes unless interrupted
    result = _interrupt(["separate", song, "--model", model_file, "-o", out, "--shifts", "50"], tmp_path,
                        ready="separating long")
    assert result.returncode == 130, result.stderr
    assert result.stderr.splitlines()[-1] == "ugosa: interrupted"
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert files_under(out) == []


@pytest.mark.slow
def test_ctrl_c_during_adaptation_exits_130_and_writes_no_model(tmp_path, model_file, labels_file):
    song = tmp_path / "song.wav"
    sf.write(song, tone_mix(4.0, 8000), 8000)
    out = tmp_path / "out"
    result = _interrupt(["adapt", song, "--labels", labels_file, "--model", model_file, "-o", out / "a.th",
                         "--epochs", "1000", "--window", "1", "--hop", "0.25"], tmp_path, ready="adapting with")
    assert result.returncode == 130, result.stderr
    assert result.stderr.splitlines()[-1] == "ugosa: interrupted"
    assert files_under(out) == []


def _peak_rss_kib(args: list[object]) -> int:
    """Peak resident memory of one ugosa run, measured by a parent that has no other child."""
    probe = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "assert code == 0, code\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(UGOSA), *map(str, args)], capture_output=True,
                            text=True, env=SUBPROCESS_ENV, timeout=300, check=True)
    return int(result.stdout)


@pytest.mark.slow
def test_peak_memory_grows_at_most_linearly_with_the_song(tmp_path, model_file):
    """Memory against song length, measured.

    ugosa_cli.separation holds the whole song and its stems in memory (not streamed): peak memory grows by
    about 15 float32 copies of the input per second of audio (measured: ~15x; a 1-hour 44.1 kHz stereo song
    would need about 19 GB). This test guards against that growing further; it does not show bounded memory.
    """
    seconds = (10.0, 70.0)
    peaks = []
    for duration in seconds:
        song = tmp_path / f"song{duration:.0f}.wav"
        sf.write(song, tone_mix(duration, 8000), 8000)
        peaks.append(_peak_rss_kib(["separate", song, "--model", model_file, "-o", tmp_path / "out", "-q"]))
    input_kib = (seconds[1] - seconds[0]) * 8000 * 2 * 4 / 1024  # the extra float32 samples of the longer song
    copies = (peaks[1] - peaks[0]) / input_kib
    print(f"peak memory grew by {copies:.1f} copies of the input ({peaks} KiB)")
    assert copies < 24, f"peak memory grew by {copies:.1f} copies of the input ({peaks} KiB)"


# ---------------------------------------------------------------- names and paths from files


def _checkpoint_with_sources(path: Path, config_sources: list[str], stored: list[str] | None = None) -> Path:
    """A ugosa checkpoint of the tiny model whose stored source names are whatever the file says."""
    torch.manual_seed(0)
    model = ConvTasNet(TINY_CONFIG)
    torch.save({
        "format": "ugosa-checkpoint", "version": 1,
        "config": {**TINY_CONFIG.to_dict(), "sources": config_sources},
        "sources": config_sources if stored is None else stored,
        "samplerate": TINY_CONFIG.samplerate,
        "state_dict": model.state_dict(), "provenance": {},
    }, path)
    return path


@pytest.mark.parametrize("bad", ["../../../../../x", "a/b", "..", "", "Vocals", "x\x1b[2J", "v" * 33, "-x"])
def test_a_checkpoint_whose_source_names_are_not_plain_names_is_refused(cli, tmp_path, write_wav, monkeypatch, bad):
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    evil = _checkpoint_with_sources(tmp_path / "evil.th", [bad, "bass", "other", "vocals"])
    imported = cli("model", "import", evil, "--name", "evil")
    assert imported.exit_code == 2
    assert_one_clear_error(imported, "evil.th", "source name", "letters, digits")
    assert "\x1b" not in imported.stderr
    song = write_wav("song.wav", seconds=0.2)
    out = tmp_path / "deep" / "er" / "still" / "out"
    separated = cli("separate", song, "--model", evil, "-o", out)
    assert separated.exit_code == 2
    assert_one_clear_error(separated, "evil.th", "source name")
    assert [p for p in files_under(tmp_path) if p.suffix == ".wav"] == [song]


def test_the_stored_source_list_is_checked_too(cli, tmp_path, write_wav):
    evil = _checkpoint_with_sources(tmp_path / "evil.th", ["drums", "bass", "other", "vocals"],
                                    stored=["../x", "bass", "other", "vocals"])
    result = cli("separate", write_wav(seconds=0.2), "--model", evil, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert_one_clear_error(result, "evil.th", "'../x'")


def test_plain_source_names_of_a_larger_model_load(cli, tmp_path, write_wav):
    names = ["drums", "bass", "other", "vocals", "guitar", "piano"]
    torch.manual_seed(0)
    config = TINY_CONFIG.__class__(**{**TINY_CONFIG.to_dict(), "sources": tuple(names)})
    model_path = tmp_path / "six.th"
    save_checkpoint(model_path, ConvTasNet(config).eval())
    result = cli("separate", write_wav(seconds=0.2), "--model", model_path, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert sorted(Path(p).stem for p in result.stdout.split()) == sorted(names)


@pytest.mark.parametrize(
    "template, words",
    [
        ("../escape/{stem}.{ext}", ["'..'", "--out"]),
        ("a/../../{stem}.{ext}", ["'..'"]),
        ("..\\{stem}.{ext}", ["'..'"]),
        ("{ABS}/{stem}.{ext}", ["relative path", "--out"]),
        ("{stem:.0}.{ext}", ["{stem:.0}", "format spec"]),
        ("{stem!r}.{ext}", ["{stem!r}", "conversion"]),
        ("{stem[0]}.{ext}", ["{stem[0]}", "index"]),
        ("{stem.upper}.{ext}", ["{stem.upper}", "attribute"]),
        ("{stem:{ext}}", ["format spec"]),
        ("{stem", ["not a valid template"]),
        ("{stem}}.{ext}", ["not a valid template"]),
        ("{}.{ext}", ["{}"]),
        ("a\x00{stem}.{ext}", ["control character"]),
        ("{track}\x1b[2J/{stem}.{ext}", ["control character"]),
    ],
)
def test_a_template_that_escapes_or_merges_stems_is_refused_before_any_work(cli, tmp_path, model_file, write_wav,
                                                                          template, words):
    template = template.replace("{ABS}", str(tmp_path / "abs"))
    song = write_wav(seconds=0.2)
    result = cli("separate", song, "--model", model_file, "-o", tmp_path / "out", "--filename", template)
    assert result.exit_code == 2, result.stderr
    assert_one_clear_error(result, "--filename", *words)
    assert [p for p in files_under(tmp_path) if p != song and p != model_file] == []


def test_a_template_that_gives_two_stems_one_path_is_refused():
    from ugosa_cli.errors import InputError
    from ugosa_cli.output import OutputSpec

    spec = OutputSpec(root=Path("out"), template="{track}/{stem}.{ext}")
    with pytest.raises(InputError, match="both"):
        spec.paths(model="m", track="song", stems=("a/b", "a_b"))
    assert list(spec.paths(model="m", track="song", stems=("a", "b")).values()) == [Path("out/song/a.wav"),
                                                                                     Path("out/song/b.wav")]


@pytest.mark.parametrize("name, folder", [("...wav", "_"), ("..wav", "_"), ("a\x1bb.wav", "a_b"), (".wav", ".wav")])
def test_a_song_whose_name_is_a_path_part_still_separates_inside_out(cli, tmp_path, model_file, name, folder):
    song = tmp_path / "songs" / name
    song.parent.mkdir()
    sf.write(song, tone_mix(0.2, 8000), 8000, format="WAV")
    out = tmp_path / "out"
    result = cli("separate", song, "--model", model_file, "-o", out)
    assert result.exit_code == 0, result.stderr
    written = [p for p in files_under(tmp_path) if p != song and p != model_file]
    assert len(written) == 4 and all(p.is_relative_to(out / "tiny" / folder) for p in written), written


def test_a_model_file_named_dot_dot_writes_inside_out(cli, tmp_path, tiny_model, write_wav):
    model = tmp_path / "...th"
    save_checkpoint(model, tiny_model)
    song = write_wav(seconds=0.2)
    out = tmp_path / "a" / "out"
    result = cli("separate", song, "--model", model, "-o", out)
    assert result.exit_code == 0, result.stderr
    written = [p for p in files_under(tmp_path) if p not in (song, model)]
    assert len(written) == 4 and all(p.is_relative_to(out / "_" / "song") for p in written), written


# ---------------------------------------------------------------- text from files on the terminal

_RAW_CONTROLS = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066")


def assert_no_raw_controls(*texts: str) -> None:
    for text in texts:
        assert not any(c in text for c in _RAW_CONTROLS), repr(text)


def test_a_labels_file_cannot_drive_the_terminal(cli, tmp_path):
    labels = tmp_path / "l.txt"
    labels.write_bytes(b"0\t2\t\x1b[2Jevil\n")
    result = cli("labels", "show", labels)
    assert result.exit_code == 2
    assert_one_clear_error(result, "l.txt", "\\x1b[2Jevil")
    assert_no_raw_controls(result.stderr, result.stdout)


def test_file_names_in_warnings_and_errors_are_escaped(cli, tmp_path):
    labels = tmp_path / "evil\x1b]0;title\x07\u202e.txt"
    labels.write_text("0\t0\tvocals\n1\t2\tdrums\n")  # a point label: warned about, naming the file
    shown = cli("labels", "show", labels, "--duration", "3")
    assert shown.exit_code == 0, shown.stderr
    assert "point label" in shown.stderr and "evil\\x1b]0;title\\x07\\u202e.txt" in shown.stderr
    assert_no_raw_controls(shown.stderr, shown.stdout)
    missing = cli("labels", "show", tmp_path / "gone\x9b31m.txt")
    assert missing.exit_code == 2
    assert_one_clear_error(missing, "gone\\x9b31m.txt", "no such file")
    assert_no_raw_controls(missing.stderr)


def test_names_from_the_model_cache_are_escaped_on_stdout(cli, tmp_path, monkeypatch, model_file):
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "models" / "imported"
    folder.mkdir(parents=True)
    name = "x\x1b[2J\u202ey"
    (folder / f"{name}.th").write_bytes(model_file.read_bytes())
    listed = cli("model", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "x\\x1b[2J\\u202ey" in listed.stdout
    assert_no_raw_controls(listed.stdout, listed.stderr)
    as_json = cli("model", "list", "--json")
    assert_no_raw_controls(as_json.stdout)
    assert name in [row["name"] for row in json.loads(as_json.stdout)["models"]]  # JSON escapes, same value


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_stem_names_from_files_are_escaped_in_the_eval_table(cli, tmp_path):
    for folder in ("refs", "ests"):
        (tmp_path / folder).mkdir()
        for name in ("vocals", "[bold]x\x1b[2J"):
            sf.write(tmp_path / folder / f"{name}.wav", tone_mix(1.0, 8000, seed=len(folder)), 8000)
    result = cli("eval", "-r", tmp_path / "refs", "-e", tmp_path / "ests")
    assert result.exit_code == 0, result.stderr
    assert "[bold]x\\x1b[2J" in result.stdout  # neither a control sequence nor rich markup
    assert_no_raw_controls(result.stdout, result.stderr)


# ---------------------------------------------------------------- files that are not regular files, or too big


def _run_bounded(args: list[object], *, stdin: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ugosa in a subprocess that cannot take the machine down: 2 GiB of data at most, and a time limit."""
    def limit() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))

    try:
        return subprocess.run([str(UGOSA), *map(str, args)], input=stdin, capture_output=True, env=SUBPROCESS_ENV,
                              preexec_fn=limit, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ugosa {' '.join(map(str, args))} still running after {timeout} s")


def _assert_refused(result: subprocess.CompletedProcess, *words: str) -> None:
    stderr = result.stderr.decode()
    lines = [line for line in stderr.splitlines() if line.startswith("ugosa: error:")]
    assert result.returncode == 2 and len(lines) == 1, stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert "empty (0 bytes)" not in stderr and "Traceback" not in stderr


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.txt"
    os.mkfifo(path)
    return path


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_labels_from_a_device_or_a_fifo_are_refused_without_reading(tmp_path, fifo, write_wav, model_file):
    song = write_wav(seconds=0.2)
    for source, kind in (("/dev/zero", "character device"), (fifo, "named pipe")):
        _assert_refused(_run_bounded(["labels", "show", source]), str(source), kind, "not a regular file")
        separated = _run_bounded(["separate", song, "--labels", source, "--model", model_file, "-o", tmp_path / "o"])
        _assert_refused(separated, str(source), kind)
    assert files_under(tmp_path / "o") == []


def test_a_labels_file_over_16_mib_is_refused(cli, tmp_path):
    big = tmp_path / "big.txt"
    line = b"0\t1\tvocals\n"
    big.write_bytes(line * ((16 << 20) // len(line) + 1))
    result = cli("labels", "show", big)
    assert result.exit_code == 2
    assert_one_clear_error(result, "big.txt", "16 MiB")
    piped = cli("labels", "show", "-", stdin=big.read_bytes())
    assert piped.exit_code == 2
    assert_one_clear_error(piped, "<stdin>", "16 MiB")
    fine = cli("labels", "show", "-", stdin=line)
    assert fine.exit_code == 0, fine.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_a_track_list_from_a_device_a_fifo_or_too_big_is_refused(tmp_path, fifo, model_file):
    for source, kind in (("/dev/zero", "character device"), (fifo, "named pipe")):
        result = _run_bounded(["separate", "--from-list", source, "--model", model_file, "-o", tmp_path / "o"])
        _assert_refused(result, f"--from-list {source}", kind)
    piped = _run_bounded(["separate", "--from-list", "-", "--model", model_file, "-o", tmp_path / "o"],
                         stdin=b"x.wav\n" * ((16 << 20) // 6 + 1))
    _assert_refused(piped, "--from-list -", "16 MiB")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.parametrize("command", ["separate", "eval"])
def test_audio_from_a_device_or_a_fifo_is_not_called_empty(cli, tmp_path, fifo, model_file, command):
    for source, kind in (("/dev/zero", "character device"), (fifo, "named pipe")):
        if command == "separate":
            result = cli("separate", source, "--model", model_file, "-o", tmp_path / "o")
        else:
            result = cli("eval", "-r", f"vocals={source}", "-e", f"vocals={source}")
        assert result.exit_code == 2
        assert_one_clear_error(result, str(source), kind, "not a regular file")
        assert "empty" not in result.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_a_model_file_that_is_a_device_or_a_fifo_is_refused_without_reading(tmp_path, fifo, write_wav):
    song = write_wav(seconds=0.2)
    for source, kind in (("/dev/zero", "character device"), (fifo, "named pipe")):
        result = _run_bounded(["separate", song, "--model", source, "-o", tmp_path / "o"], timeout=30)
        _assert_refused(result, str(source), kind)
        imported = _run_bounded(["model", "import", source, "--name", "x"], timeout=30)
        _assert_refused(imported, str(source))


# ---------------------------------------------------------------- UGOSA_OFFLINE


@pytest.mark.parametrize("value", ["2", "enabled", "ja", "1 x"])
def test_an_unknown_ugosa_offline_value_is_the_same_clear_error_for_every_command(cli, tmp_path, monkeypatch, model_file,
                                                                                 labels_file, write_wav, value):
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UGOSA_OFFLINE", value)
    song = write_wav(seconds=0.2)
    for args in (
        ("separate", song, "--model", model_file, "-o", tmp_path / "out"),
        ("adapt", song, "--labels", labels_file, "--model", model_file, "-o", tmp_path / "a.th", *FAST_ADAPT),
        ("model", "download"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert_one_clear_error(result, f"UGOSA_OFFLINE={value!r}", "1, true, yes or on", "0, false, no, off")
    assert files_under(tmp_path / "out") == [] and not (tmp_path / "a.th").exists()


@pytest.mark.parametrize("value, offline", [("1", True), ("TRUE", True), (" yes ", True), ("On", True),
                                            ("0", False), ("false", False), ("No", False), ("off", False), ("", False)])
def test_ugosa_offline_words(cli, tmp_path, monkeypatch, model_file, write_wav, value, offline):
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("UGOSA_MODEL_ROOT", "http://127.0.0.1:9/")  # nothing listens: a connection fails at once
    monkeypatch.setenv("UGOSA_OFFLINE", value)
    local = cli("separate", write_wav(seconds=0.2), "--model", model_file, "-o", tmp_path / "out")
    assert local.exit_code == 0, local.stderr
    for args in (("separate", write_wav(seconds=0.2), "-o", tmp_path / "out"), ("model", "download")):
        remote = cli(*args)
        assert remote.exit_code == 1
        assert ("offline mode is on" in remote.stderr) == offline, remote.stderr


# ---------------------------------------------------------------- messages that say what is wrong


@pytest.mark.parametrize(
    "content, words",
    [
        (bytes(range(256)) * 40, ["not a model file", "not a PyTorch file"]),
        (b"\x80\x02" + bytes(range(200, 256)) * 20, ["not a model file", "not a PyTorch file"]),
        (b"just some text\n" * 100, ["not a model file", "not a PyTorch file"]),
    ],
)
def test_bytes_that_are_not_a_model_file_are_not_called_code(cli, tmp_path, write_wav, content, words):
    model = tmp_path / "random.th"
    model.write_bytes(content)
    result = cli("separate", write_wav(seconds=0.2), "--model", model, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert_one_clear_error(result, "random.th", *words)
    assert "run code" not in result.stderr


def test_a_cut_pytorch_file_is_called_corrupt_and_a_pickled_global_is_still_refused(cli, tmp_path, write_wav, tiny_model):
    song = write_wav(seconds=0.2)
    legacy = tmp_path / "legacy.th"
    torch.save(tiny_model.state_dict(), legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:200])
    cut = cli("separate", song, "--model", legacy, "-o", tmp_path / "out")
    assert cut.exit_code == 2
    assert_one_clear_error(cut, "legacy.th", "corrupt or truncated")
    assert "run code" not in cut.stderr
    for zipped in (True, False):
        evil = tmp_path / f"evil-{zipped}.th"
        torch.save({"state_dict": _RunsCode(tmp_path / "pwned")}, evil, _use_new_zipfile_serialization=zipped)
        refused = cli("separate", song, "--model", evil, "-o", tmp_path / "out")
        assert refused.exit_code == 2
        assert_one_clear_error(refused, evil.name, "could run code")
    assert not (tmp_path / "pwned").exists()


def test_bench_names_the_eval_window_flags(cli, tmp_path):
    (tmp_path / "musdb" / "test").mkdir(parents=True)
    for flag in ("--eval-win", "--eval-hop"):
        for value in ("nan", "0", "-1", "inf"):
            result = cli("bench", "--musdb", tmp_path / "musdb", "-o", tmp_path / "b", flag, value, "--dry-run")
            assert result.exit_code == 2, result.stderr
            assert_one_clear_error(result, f"{flag} {value}")


# ---------------------------------------------------------------- minor


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_sighup_and_sigterm_stop_like_ctrl_c_and_remove_temporaries(tmp_path, model_file, signum):
    song = tmp_path / "long.wav"
    sf.write(song, tone_mix(30.0, 8000), 8000)
    out = tmp_path / "out"
    process = subprocess.Popen([str(UGOSA), "separate", str(song), "--model", str(model_file), "-o", str(out),
                                "--shifts", "50"], cwd=tmp_path, env=SUBPROCESS_ENV, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial") for p in files_under(out)) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    assert files_under(out), "no temporary stem appeared"
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "ugosa: interrupted" and stdout == ""
    assert files_under(out) == []


# ---------------------------------------------------------------- outputs never overwrite inputs or each other

def _song_at(path: Path, seconds: float = 0.2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone_mix(seconds, 8000), 8000)
    return path


def _snapshot(folder: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in files_under(folder)}


@pytest.mark.parametrize("which", ["track", "labels", "references", "track list", "model"])
def test_a_batch_never_overwrites_an_input_that_comes_later(cli, tmp_path, model_file, which):
    """The first song's stems would replace a file read later (a later song, its labels, the reference stems) or
    read before (the track list, the model file): refused before anything is written, naming both."""
    folder = tmp_path / "b"
    mix = _song_at(folder / "mix.wav")
    args: tuple[object, ...] = (mix, "--model", model_file, "-o", folder, "--filename", "{stem}.{ext}")
    if which == "track list":
        victim = folder / "other.txt"
        victim.write_text(f"{mix}\n")
        args = ("--from-list", victim, "--model", model_file, "-o", folder, "--filename", "{stem}.txt")
    elif which == "model":
        victim = folder / "bass.th"
        victim.write_bytes(model_file.read_bytes())
        args = (mix, "--model", victim, "-o", folder, "--filename", "{stem}.th")
    elif which == "track":
        victim = _song_at(folder / "drums.wav")
        args = (*args, victim)
    elif which == "labels":
        victim = folder / "vocals.txt"
        victim.write_text("0\t0.1\tvocals\n")
        args = (*args, "--labels", victim, "--strategy", "B0", "--filename", "{stem}.txt")
    else:
        for name in ("drums", "bass", "other", "vocals"):
            _song_at(folder / f"{name}.wav")
        victim = folder / "drums.wav"
        (tmp_path / "l.txt").write_text("0\t0.1\tvocals\n")
        args = (*args, "--labels", tmp_path / "l.txt", "--strategy", "S-L5:D", "--references", folder, *FAST_ADAPT)
    before = _snapshot(tmp_path)
    result = cli("separate", *args)
    assert result.exit_code == 2 and result.stdout == "", result.stderr
    assert_one_clear_error(result, str(mix), str(victim), "would overwrite", "--out or --filename")
    assert _snapshot(tmp_path) == before


PARENT = "{model}/{parent}/{track}/{stem}.{ext}"


@pytest.mark.slow  # over a second: CI runs it
def test_songs_with_the_same_name_are_refused_and_parent_tells_them_apart(cli, tmp_path, model_file):
    first, second = _song_at(tmp_path / "a" / "mixture.wav"), _song_at(tmp_path / "b" / "mixture.wav", 0.3)
    out = tmp_path / "out"
    alone = cli("separate", first, "--model", model_file, "-o", out)
    assert alone.exit_code == 0, alone.stderr
    before = _snapshot(out)
    for extra in ((), ("--skip-existing",)):  # --skip-existing used to report a/mixture's stems as b/mixture's
        result = cli("separate", first, second, "--model", model_file, "-o", out, *extra)
        assert result.exit_code == 2 and result.stdout == "", result.stderr
        assert_one_clear_error(result, str(first), str(second), "would both be written", f"--filename '{PARENT}'")
        assert _snapshot(out) == before
    result = cli("separate", first, second, "--model", model_file, "-o", out, "--json", "--filename", PARENT)
    assert result.exit_code == 0, result.stderr
    stems = [json.loads(line)["stems"]["drums"] for line in result.stdout.splitlines()]
    assert stems == [str(out / "tiny" / "a" / "mixture" / "drums.wav"), str(out / "tiny" / "b" / "mixture" / "drums.wav")]
    assert [sf.info(path).frames for path in stems] == [1600, 2400]
    third = _song_at(tmp_path / "x" / "a" / "mixture.wav")
    again = cli("separate", first, third, "--model", model_file, "-o", out, "--filename", PARENT)
    assert again.exit_code == 2
    assert_one_clear_error(again, "would both be written", "different --out")


@pytest.mark.parametrize("twice", ["same", "other"])
def test_a_song_given_twice_is_refused(cli, tmp_path, model_file, twice):
    song = _song_at(tmp_path / "song.wav")
    result = cli("separate", song, song if twice == "same" else tmp_path / "." / "song.wav", "--model", model_file,
                 "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert_one_clear_error(result, "song.wav", "given twice")
    assert files_under(tmp_path / "out") == []


def test_the_parent_field_is_the_songs_folder_made_safe():
    from ugosa_cli.cli.separate_cmd import parent_name
    from ugosa_cli.output import OutputSpec

    spec = OutputSpec(root=Path("out"), template="{parent}/{track}/{stem}.{ext}")
    assert parent_name("music/a b/mixture.wav") == "a b" and parent_name("x/../y/z.wav") == "y"
    assert parent_name("/mixture.wav") == "" and parent_name("-") == Path.cwd().name
    for parent, folder in (("a b", "a b"), ("", "_"), ("..", "_"), ("a/b", "a_b"), ("a\x1bb", "a_b")):
        assert spec.path(model="m", track="t", stem="s", parent=parent) == Path("out") / folder / "t" / "s.wav"


# ---------------------------------------------------------------- named output files: inputs never, others with --force

@pytest.mark.parametrize("which", ["song", "labels", "references", "model"])
def test_adapt_never_overwrites_what_it_reads_even_with_force(cli, tmp_path, model_file, labels_file, which):
    song = _song_at(tmp_path / "song.wav", 1.0)
    refs = tmp_path / "refs"
    for name in ("drums", "bass", "other", "vocals"):
        _song_at(refs / f"{name}.wav", 1.0)
    target = {"song": song, "labels": labels_file, "references": refs / "vocals.wav", "model": model_file}[which]
    before = _snapshot(tmp_path)
    for force in ((), ("--force",)):
        result = cli("adapt", song, "--labels", labels_file, "--model", model_file, "--strategy", "S-L5:D",
                     "--references", refs, "-o", target, *FAST_ADAPT, *force)
        assert result.exit_code == 2 and result.stdout == "", result.stderr
        assert_one_clear_error(result, str(target), "refusing to overwrite", "choose another --out")
        assert "adapting" not in result.stderr
        assert _snapshot(tmp_path) == before


def test_adapt_refuses_an_existing_model_file_unless_force(cli, tmp_path, model_file, labels_file):
    song = _song_at(tmp_path / "song.wav", 1.0)
    target = tmp_path / "song-adapted.th"  # the default name
    target.write_bytes(b"an earlier model")
    result = cli("adapt", song, "--labels", labels_file, "--model", model_file, *FAST_ADAPT)
    assert result.exit_code == 2 and result.stdout == "", result.stderr
    assert_one_clear_error(result, "song-adapted.th", "exists already", "--force")
    assert "adapting" not in result.stderr and target.read_bytes() == b"an earlier model"
    dry = cli("adapt", song, "--labels", labels_file, "--model", model_file, *FAST_ADAPT, "--dry-run")
    assert dry.exit_code == 0, dry.stderr  # a dry run writes nothing
    forced = cli("adapt", song, "--labels", labels_file, "--model", model_file, *FAST_ADAPT, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout.strip() == "song-adapted.th" and target.read_bytes()[:2] == b"PK"


def test_adapt_onto_a_folder_is_refused_before_training(cli, tmp_path, model_file, labels_file):
    song = _song_at(tmp_path / "song.wav", 1.0)
    folder = tmp_path / "models"
    folder.mkdir()
    for force in ((), ("--force",)):
        result = cli("adapt", song, "--labels", labels_file, "--model", model_file, "-o", folder, *FAST_ADAPT, *force)
        assert result.exit_code == 2 and result.stdout == "", result.stderr
        assert_one_clear_error(result, str(folder), "is a folder", "--out")
        assert "adapting" not in result.stderr and files_under(folder) == []


def _stems_folder(folder: Path) -> list[Path]:
    return [_song_at(folder / f"{name}.wav", 0.5) for name in ("drums", "bass", "other", "vocals")]


@pytest.mark.parametrize("command", ["convert", "convert-audio", "from-stems", "draft-song", "draft-stem"])
def test_labels_output_never_overwrites_an_input_even_with_force(cli, tmp_path, labels_file, command):
    stems = _stems_folder(tmp_path / "track")
    song = _song_at(tmp_path / "song.wav", 1.0)
    args, target = {
        "convert": (("convert", labels_file, "--to", "csv"), labels_file),
        "convert-audio": (("convert", labels_file, "--audio", song, "--to", "csv"), song),
        "from-stems": (("from-stems", tmp_path / "track"), stems[3]),
        "draft-song": (("draft", song, "--stems-dir", tmp_path / "track", "--format", "csv"), song),
        "draft-stem": (("draft", song, "--stems-dir", tmp_path / "track", "--format", "csv"), stems[1]),
    }[command]
    before = _snapshot(tmp_path)
    for force in ((), ("--force",)):
        result = cli("labels", *args, "-o", target, *force)
        assert result.exit_code == 2 and result.stdout == "", result.stderr
        assert_one_clear_error(result, str(target), "refusing to overwrite", "--output")
        assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["convert", "from-stems", "draft"])
def test_labels_output_refuses_an_existing_file_unless_force(cli, tmp_path, labels_file, command):
    _stems_folder(tmp_path / "track")
    target = tmp_path / "out.csv"
    target.write_text("mine\n")
    song = _song_at(tmp_path / "song.wav", 2.5)
    args = {
        "convert": ("convert", labels_file),
        "from-stems": ("from-stems", tmp_path / "track", "--format", "csv"),
        "draft": ("draft", song, "--stems-dir", tmp_path / "track"),
    }[command]
    result = cli("labels", *args, "-o", target)
    assert result.exit_code == 2 and result.stdout == "", result.stderr
    assert_one_clear_error(result, str(target), "exists already", "--force")
    assert target.read_text() == "mine\n"
    forced = cli("labels", *args, "-o", target, "--force")
    assert forced.exit_code == 0, forced.stderr
    assert forced.stdout.strip() == str(target) and target.read_text().startswith("start,end,label\n")


@pytest.mark.slow  # over a second: CI runs it
def test_demo_refuses_to_replace_an_earlier_demo_unless_force(cli, tmp_path):
    out = tmp_path / "demo"
    (out / "after").mkdir(parents=True)
    (out / "labels.txt").write_text("my labels\n")
    (out / "after" / "vocals.wav").write_bytes(b"mine")
    result = cli("demo", "--duration", "2", "--strategy", "P-L5:D", "--out", out)
    assert result.exit_code == 2 and result.stdout == "", result.stderr
    assert_one_clear_error(result, str(out), "labels.txt", "after/vocals.wav", "--force")
    assert "adapting" not in result.stderr and set(files_under(out)) == {out / "labels.txt", out / "after" / "vocals.wav"}
    (out / "true").write_text("a file where a folder goes")
    blocked = cli("demo", "--duration", "2", "--out", out, "--force")
    assert blocked.exit_code == 2
    assert_one_clear_error(blocked, str(out / "true"), "is a file")
    (out / "true").unlink()
    forced = cli("demo", "--duration", "2", "--strategy", "P-L5:D", "--out", out, "--force", "--json", "-q")
    assert forced.exit_code == 0, forced.stderr
    assert (out / "labels.txt").read_text() != "my labels\n" and sf.info(out / "after" / "vocals.wav").frames > 0


# ---------------------------------------------------------------- settings, folders in the way, full disks

@pytest.mark.parametrize("value, words", [("nan", ["finite"]), ("inf", ["finite"]), ("-inf", ["finite"]),
                                          ("1e9", ["1 to 60 seconds"]), ("0.001", ["1 to 60 seconds"]),
                                          ("61", ["1 to 60 seconds"]), ("0", ["positive"])])
def test_a_segment_outside_the_models_range_is_refused_before_any_work(cli, tmp_path, model_file, labels_file,
                                                                       value, words):
    song = _song_at(tmp_path / "song.wav", 1.0)
    out = tmp_path / "out"
    for extra in ((), ("--labels", labels_file, *FAST_ADAPT)):
        result = cli("separate", song, "--model", model_file, "-o", out, f"--segment={value}", *extra)
        assert result.exit_code == 2 and result.stdout == "", result.stderr
        assert_one_clear_error(result, f"--segment {value if value != '1e9' else '1e+09'}", *words)
        assert "adapting" not in result.stderr and "separating" not in result.stderr
        assert files_under(out) == []


def test_segments_at_the_ends_of_the_range_separate(cli, tmp_path, model_file):
    song = _song_at(tmp_path / "song.wav", 1.5)
    for value in ("1", "60"):
        result = cli("separate", song, "--model", model_file, "-o", tmp_path / value, "--segment", value)
        assert result.exit_code == 0, result.stderr
        assert len(result.stdout.split()) == 4


def test_a_folder_where_a_stem_goes_is_refused_before_any_work(cli, tmp_path, model_file):
    song = _song_at(tmp_path / "song.wav")
    out = tmp_path / "out"
    (out / "tiny" / "song" / "bass.wav").mkdir(parents=True)
    result = cli("separate", song, "--model", model_file, "-o", out)
    assert result.exit_code == 2 and result.stdout == "", result.stderr
    assert_one_clear_error(result, str(out / "tiny" / "song" / "bass.wav"), "is a folder")
    assert files_under(out) == []


def test_atomic_writes_onto_a_folder_are_refused_and_leave_nothing(tmp_path):
    from ugosa_cli.audio import write_audio
    from ugosa_cli.errors import InputError
    from ugosa_cli.output import OutputSpec, StemWriter

    folder = tmp_path / "x.wav"
    (folder / "inside").mkdir(parents=True)
    with pytest.raises(InputError, match="is a folder"):
        write_audio(folder, np.zeros((2, 100), np.float32), 8000)
    spec = OutputSpec(root=tmp_path)
    paths = {"drums": tmp_path / "drums.wav", "bass": folder}
    with pytest.raises(InputError, match="is a folder"), StemWriter(paths, 8000, 2, spec) as writer:
        writer.write({"drums": np.zeros((2, 100), np.float32), "bass": np.zeros((2, 100), np.float32)})
        writer.commit()
    assert files_under(tmp_path) == [] and (folder / "inside").is_dir()


def _full_disk_for_partial_files(monkeypatch):
    """Writes of ugosa's temporary files fail as on a full disk (ENOSPC); other writes work."""
    import errno

    real = Path.write_bytes

    def write_bytes(self, data):
        if self.name.endswith(".partial"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_a_full_disk_while_saving_the_adapted_model_is_one_line_and_leaves_nothing(cli, tmp_path, model_file,
                                                                                   labels_file, monkeypatch):
    song = _song_at(tmp_path / "song.wav", 1.0)
    target = tmp_path / "models" / "a.th"
    _full_disk_for_partial_files(monkeypatch)
    result = cli("adapt", song, "--labels", labels_file, "--model", model_file, "-o", target, *FAST_ADAPT)
    assert result.exit_code == 1 and result.stdout == "", result.stderr
    assert_one_clear_error(result, f"no space left on device writing {target}")
    assert files_under(tmp_path / "models") == []


def test_a_full_disk_while_writing_labels_is_one_line_and_leaves_nothing(cli, tmp_path, labels_file, monkeypatch):
    target = tmp_path / "out" / "labels.csv"
    _full_disk_for_partial_files(monkeypatch)
    result = cli("labels", "convert", labels_file, "-o", target)
    assert result.exit_code == 1 and result.stdout == "", result.stderr
    assert_one_clear_error(result, f"no space left on device writing {target}")
    assert files_under(tmp_path / "out") == []


@pytest.mark.slow
def test_a_file_size_limit_while_saving_the_adapted_model_leaves_no_partial_file(tmp_path, model_file, labels_file):
    """A real failed write under torch.save (it used to surface as torch's "inline_container" RuntimeError)."""
    song = _song_at(tmp_path / "song.wav", 1.0)
    out = tmp_path / "models"
    result = _run_ugosa("adapt", song, "--labels", labels_file, "--model", model_file, "-o", out / "a.th",
                        *FAST_ADAPT, preexec=_disk_full_after(4096))
    assert result.returncode == 1 and result.stdout == "", result.stderr
    assert_one_clear_error(result, str(out / "a.th"), "cannot write")
    assert "inline_container" not in result.stderr and files_under(out) == []


def test_a_newline_in_a_name_keeps_the_plain_list_one_path_per_line(cli, tmp_path, model_file):
    """A newline in the song's name becomes _ in its stems' paths; one in --out is printed escaped (\\x0a, in the
    shell's $'...' quoting), so the plain list stays one path per line; --json gives the real path."""
    song = _song_at(tmp_path / "in" / "two\nlines.wav")
    out = tmp_path / "out\nput"
    for extra in ((), ("--skip-existing",)):
        plain = cli("separate", song, "--model", model_file, "-o", out, *extra)
        assert plain.exit_code == 0, plain.stderr
        lines = plain.stdout.split("\n")
        assert lines[-1] == "" and len(lines) == 5, plain.stdout
        shown = str(out).replace("\n", "\\x0a")
        assert lines[:4] == [f"$'{shown}/tiny/two_lines/{stem}.wav'" for stem in ("drums", "bass", "other", "vocals")]
    record = json.loads(cli("separate", song, "--model", model_file, "-o", out, "--json").stdout)
    assert record["stems"]["drums"] == str(out / "tiny" / "two_lines" / "drums.wav")
    assert record["input"] == str(song) and record["track"] == "two\nlines"
    assert all(Path(path).is_file() for path in record["stems"].values())


def test_audio_on_stdin_over_the_limit_is_refused_and_a_path_suggested(cli, tmp_path, model_file, monkeypatch):
    import io

    from ugosa_cli import audio

    song = io.BytesIO()
    sf.write(song, np.zeros((8000, 2), np.float32) + 0.1, 8000, format="WAV")
    monkeypatch.setattr(audio, "MAX_STDIN_BYTES", len(song.getvalue()) - 1)
    result = cli("separate", "-", "--model", model_file, "-o", tmp_path / "o", stdin=song.getvalue())
    assert result.exit_code == 2
    assert_one_clear_error(result, "<stdin>", "give the file's path instead")
    assert not (tmp_path / "o").exists() or files_under(tmp_path / "o") == []
    monkeypatch.setattr(audio, "MAX_STDIN_BYTES", len(song.getvalue()))
    assert audio.AudioFile("-", io.BytesIO(song.getvalue())).frames == 8000  # at the limit: read


@pytest.mark.parametrize("family", ["convtasnet", "htdemucs"])
def test_a_model_file_whose_config_asks_for_terabytes_is_refused_without_allocating(cli, tmp_path, write_wav, family):
    """A small file whose configuration describes a network of billions of weights (the largest sizes a
    configuration may ask for): the mismatch with its small state dict is found on the meta device, so ugosa answers
    at once instead of exhausting memory. Larger sizes are refused before that (tests/test_hostile_numbers.py)."""
    from test_htdemucs import small_model

    torch.manual_seed(0)
    model = ConvTasNet(TINY_CONFIG) if family == "convtasnet" else small_model(1)
    path = tmp_path / "huge.th"
    save_checkpoint(path, model)
    payload = torch.load(path, weights_only=True)
    payload["config"]["N" if family == "convtasnet" else "channels"] = 16 * (256 if family == "convtasnet" else 48)
    if family == "convtasnet":
        payload["config"].update(B=16 * 256, H=16 * 512)
    torch.save(payload, path)
    song = write_wav("song.wav", seconds=0.5)
    began = time.monotonic()
    result = cli("separate", song, "--model", path, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert_one_clear_error(result, "huge.th", "does not match")
    assert time.monotonic() - began < 60 and not (tmp_path / "out").exists()

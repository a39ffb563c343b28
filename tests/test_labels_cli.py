"""``ugosa labels show | convert | from-stems`` end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf

AUDACITY = (
    "0.000000\t4.000000\tVocals\r\n\\\t100.000000\t3000.000000\r\n"
    "2.500000\t7.000000\tperc\r\n6.000000\t12.000000\tguitar\r\n"
)


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes(AUDACITY.encode())
    return path


def test_show_json_has_the_documented_shape(cli, labels_file):
    result = cli("labels", "show", labels_file, "--duration", "0:10", "--json", "--map", "guitar=other")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "duration": 10.0,
        "sources": {"drums": [[2.5, 7.0]], "bass": [[0.0, 10.0]], "other": [[6.0, 10.0]], "vocals": [[0.0, 4.0]]},
        "unconstrained": ["bass"],
    }
    assert "warning" in result.stderr and "past the end" in result.stderr and "bass" in result.stderr


def test_show_timeline_is_plain_text_when_piped(cli, labels_file, write_wav):
    song = write_wav("song.wav", seconds=12.0)
    result = cli("labels", "show", labels_file, "--audio", song, "--map", "guitar=other")
    assert result.exit_code == 0, result.stderr
    assert "\x1b[" not in result.stdout
    lines = result.stdout.splitlines()
    assert lines[0] == "duration 12.0s"
    rows = {line.split()[0]: line for line in lines[3:-1]}
    assert set(rows) == {"drums", "bass", "other", "vocals"}
    assert "unconstrained" in rows["bass"] and "1 region, 4.0s (33%)" in rows["vocals"]
    vocals_bar = rows["vocals"].split()[1]
    assert vocals_bar[0] == "█" and vocals_bar[-1] == "·"
    assert any("0:00" in line and "0:10" in line for line in lines[1:3])


def _clock_seconds(text: str) -> int:
    minutes, seconds = text.split(":")
    return 60 * int(minutes) + int(seconds)


@pytest.mark.parametrize(("seconds", "columns"), [(10, 60), (10, 73), (10, 80), (10, 97), (12, 71), (12, 131)])
def test_show_ruler_ticks_sit_where_the_bars_put_their_times(cli, tmp_path, monkeypatch, seconds, columns):
    """Every tick is at the column where a region starting at its time begins, the last one included."""
    monkeypatch.setenv("COLUMNS", str(columns))
    path = tmp_path / "blips.txt"
    path.write_text("".join(f"{k}\t{k + 0.2}\tvocals\n" for k in range(seconds)))
    result = cli("labels", "show", path, "--duration", str(seconds))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    label_line, tick_line = lines[1:3]
    vocals_row = next(line for line in lines if line.startswith("vocals "))
    indent = len("vocals  ")
    width = len(tick_line) - indent - 1  # the rule has one cell past the bars for the end
    bar = vocals_row[indent : indent + width]
    assert set(bar) <= {"█", "▒", "·"} and vocals_row[indent + width :].startswith("  ")
    ticks = [column - indent for column, glyph in enumerate(tick_line) if glyph == "┬"]
    times = [_clock_seconds(label_line[indent + column :].split()[0]) for column in ticks]
    assert times == sorted(times) and times[0] == 0 and times[-1] == seconds and len(times) >= 3
    assert ticks == [math.floor(t / seconds * width + 0.01) for t in times]
    region_starts = [c for c, glyph in enumerate(bar) if glyph != "·" and (c == 0 or bar[c - 1] == "·")]
    assert len(region_starts) == seconds
    assert ticks[:-1] == [region_starts[t] for t in times[:-1]] and ticks[-1] == width


def test_show_reads_stdin_and_applies_margin(cli):
    result = cli("labels", "show", "-", "--json", "--margin", "0.5", stdin=b"start;end;label\n1,5;2;vox\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["sources"]["vocals"] == [[1.0, 2.5]]


def test_unknown_word_is_one_clear_line_and_exit_2(cli, labels_file):
    result = cli("labels", "show", labels_file)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "labels.txt line 4: unknown source 'guitar'" in result.stderr and "--map" in result.stderr
    ignored = cli("labels", "show", labels_file, "--ignore-unknown", "--json")
    assert ignored.exit_code == 0 and "guitar" in ignored.stderr


def test_duration_and_audio_together_are_refused(cli, labels_file, write_wav):
    result = cli("labels", "show", labels_file, "--duration", "10", "--audio", write_wav())
    assert result.exit_code == 2 and "not both" in result.stderr


def test_convert_between_formats_round_trips(cli, labels_file, tmp_path):
    csv = cli("labels", "convert", labels_file, "--to", "csv", "--ignore-unknown")
    assert csv.exit_code == 0, csv.stderr
    assert csv.stdout.splitlines() == ["start,end,label", "0,4,vocals", "2.5,7,drums"]
    out = tmp_path / "nested" / "labels.json"
    written = cli("labels", "convert", "-", "-o", out, stdin=csv.stdout.encode())
    assert written.exit_code == 0 and written.stdout.strip() == str(out)
    assert json.loads(out.read_text())["sources"]["drums"] == [[2.5, 7.0]]
    frames = cli("labels", "convert", out, "--to", "frames")
    assert frames.stdout.splitlines()[0] == "time,drums,vocals"
    back = cli("labels", "convert", "-", "--to", "audacity", stdin=frames.stdout.encode())
    assert back.stdout == "0.000000\t4.000000\tvocals\n2.500000\t7.000000\tdrums\n"
    assert not list(out.parent.glob("*.partial"))


def test_convert_needs_a_known_format(cli, labels_file, tmp_path):
    result = cli("labels", "convert", labels_file, "-o", tmp_path / "x.dat")
    assert result.exit_code == 2 and "--to" in result.stderr
    result = cli("labels", "convert", labels_file, "--to", "xml")
    assert result.exit_code == 2 and "audacity, csv, tsv, frames, json" in result.stderr


def write_stems(folder, rate=8000, seconds=12.0):
    """Stereo stems; each source is silent over a known section. Returns the sections."""
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * seconds)) / rate
    silent = {"drums": (2.0, 4.0), "bass": (5.0, 7.5), "other": (8.0, 10.0), "vocals": (0.0, 3.0)}
    signals = {
        "drums": 0.3 * rng.standard_normal(t.size),
        "bass": 0.4 * np.sin(2 * np.pi * 55 * t),
        "other": 0.2 * np.sin(2 * np.pi * 440 * t),
        "vocals": 0.3 * np.sin(2 * np.pi * 330 * t),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, signal in signals.items():
        start, end = silent[name]
        signal = np.where((t >= start) & (t < end), 0.0, signal)
        sf.write(folder / f"{name}.wav", np.stack([signal, signal], axis=1), rate)
    sf.write(folder / "mixture.wav", np.stack([sum(signals.values())] * 2, axis=1) / 4, rate)
    return silent


def test_from_stems_files_give_audacity_labels_around_the_silences(cli, tmp_path):
    silent = write_stems(tmp_path / "track")
    files = [tmp_path / "track" / f"{name}.wav" for name in ("vocals", "drums", "bass", "other")]
    result = cli("labels", "from-stems", *files)
    assert result.exit_code == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert all(len(row) == 3 for row in rows)
    spans = {}
    for start, end, name in rows:
        spans.setdefault(name, []).append((float(start), float(end)))
    for name, (start, end) in silent.items():
        active = spans[name]
        if start == 0.0:
            assert len(active) == 1 and abs(active[0][0] - end) <= 0.1 and active[0][1] == 12.0
        else:
            (a, b), (c, d) = active
            assert a == 0.0 and d == 12.0 and abs(b - start) <= 0.1 and abs(c - end) <= 0.1


def test_from_stems_track_folder_to_csv_file(cli, tmp_path):
    write_stems(tmp_path / "track")
    out = tmp_path / "labels.csv"
    result = cli("labels", "from-stems", tmp_path / "track", "--format", "csv", "-o", out, "--theta", "0.02")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    lines = out.read_text().splitlines()
    assert lines[0] == "start,end,label" and {line.rsplit(",", 1)[1] for line in lines[1:]} == {
        "drums", "bass", "other", "vocals"
    }


def test_from_stems_rejects_unrecognisable_names(cli, tmp_path):
    write_stems(tmp_path / "track")
    result = cli("labels", "from-stems", tmp_path / "track" / "mixture.wav")
    assert result.exit_code == 2 and "cannot tell which source" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("labels", "from-stems", empty)
    assert result.exit_code == 2 and "no stems found" in result.stderr


def test_labels_without_a_command_prints_help(cli):
    result = cli("labels")
    assert "show" in result.stdout + result.stderr and "from-stems" in result.stdout + result.stderr

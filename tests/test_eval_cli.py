"""``ugosa eval`` end to end on synthesized stems: table, JSON, CSV, reconciliation and every error path."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ugosa_cli.metrics import METRICS, evaluate_stems

RATE = 8000
NAMES = ("bass", "vocals", "drums")


def stems(seconds: float = 2.0, channels: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """name -> (samples, channels): a tone with a little noise per stem, a different pitch each."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    out = {}
    for i, name in enumerate(NAMES):
        mono = 0.2 * np.sin(2 * np.pi * (90 + 150 * i) * t) + 0.05 * rng.standard_normal(t.size)
        out[name] = np.stack([mono * (1 - 0.1 * c) for c in range(channels)], axis=1)
    return out


def estimates_of(refs: dict[str, np.ndarray], seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    total = sum(refs.values())
    return {n: 0.9 * x + 0.1 * (total - x) + 0.01 * rng.standard_normal(x.shape) for n, x in refs.items()}


def write(folder: Path, signals: dict[str, np.ndarray], rate: int = RATE, ext: str = "wav") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, samples in signals.items():
        sf.write(folder / f"{name}.{ext}", samples.astype(np.float32), rate, subtype="FLOAT" if ext == "wav" else None)
    return folder


@pytest.fixture
def track(tmp_path) -> tuple[Path, Path]:
    """A MUSDB-like reference folder (stems plus mixture.wav) and an estimates folder."""
    refs = stems()
    ref_dir = write(tmp_path / "ref", refs)
    sf.write(ref_dir / "mixture.wav", sum(refs.values()).astype(np.float32), RATE, subtype="FLOAT")
    return ref_dir, write(tmp_path / "est", estimates_of(refs))


def strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


def read_folder(folder: Path, names=NAMES) -> dict[str, np.ndarray]:
    return {n: sf.read(folder / f"{n}.wav", dtype="float32", always_2d=True)[0].T for n in names}


def test_table_by_default(cli, track) -> None:
    ref_dir, est_dir = track
    result = cli("eval", "--references", ref_dir, "--estimates", est_dir)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("drums", "bass", "vocals", "mean"):
        row = next(line for line in lines if f" {name} " in line)
        assert len([cell for cell in row.split() if cell.replace(".", "").replace("-", "").isdigit()]) >= 5
    assert "MDX SDR" in result.stdout and "PES" in result.stdout
    assert "mixture" in result.stderr  # a reference without an estimate is named, not scored


def test_json_holds_the_library_scores(cli, track) -> None:
    ref_dir, est_dir = track
    result = cli("eval", "-r", ref_dir, "-e", est_dir, "--json", "--win", "0.5", "--hop", "0.25")
    assert result.exit_code == 0, result.stderr
    report = strict_json(result.stdout)
    expected = evaluate_stems(read_folder(ref_dir), read_folder(est_dir), RATE, win=0.5, hop=0.25)
    assert list(report["sources"]) == ["drums", "bass", "vocals"]  # the model's source order
    for name in NAMES:
        for metric in METRICS:
            assert report["sources"][name][metric] == pytest.approx(expected["sources"][name][metric])
        assert report["inputs"][name] == {"reference": str(ref_dir / f"{name}.wav"), "estimate": str(est_dir / f"{name}.wav")}
    assert 10 < report["sources"]["vocals"]["SDR"] < 40
    assert report["settings"] == {**expected["settings"], "frames": 7}
    assert report["skipped"] == [] and set(report["mean"]) == set(METRICS)


def test_csv_rows_match_json(cli, track) -> None:
    ref_dir, est_dir = track
    as_json = strict_json(cli("eval", "-r", ref_dir, "-e", est_dir, "--json").stdout)
    result = cli("eval", "-r", ref_dir, "-e", est_dir, "--csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["source"] for row in rows] == ["drums", "bass", "vocals", "mean"]
    assert list(rows[0]) == ["source", *METRICS]
    for row in rows:
        scores = as_json["mean"] if row["source"] == "mean" else as_json["sources"][row["source"]]
        for metric in METRICS:
            assert (row[metric] == "") == (scores[metric] is None)
            if scores[metric] is not None:
                assert float(row[metric]) == pytest.approx(scores[metric], abs=1e-4)


def test_chosen_sources_and_named_files(cli, track) -> None:
    ref_dir, est_dir = track
    chosen = cli("eval", "-r", ref_dir, "-e", est_dir, "--sources", "vocals,bass", "--json")
    assert list(strict_json(chosen.stdout)["sources"]) == ["vocals", "bass"]
    named = cli(
        "eval", "-r", ref_dir / "vocals.wav", "-e", f"vocals={est_dir / 'vocals.wav'}", "--json"
    )
    assert named.exit_code == 0, named.stderr
    assert strict_json(named.stdout)["sources"]["vocals"]["MDX_SDR"] == pytest.approx(
        strict_json(chosen.stdout)["sources"]["vocals"]["MDX_SDR"]
    )


@pytest.mark.slow  # among the slowest: CI runs it
def test_rate_length_and_channels_are_reconciled_with_warnings(cli, tmp_path) -> None:
    refs = stems(channels=2)
    ref_dir = write(tmp_path / "ref", refs)
    good = estimates_of(refs)
    estimates = dict(good)
    t16 = np.arange(int(2.3 * 16000)) / 16000
    estimates["drums"] = np.stack([np.interp(t16, np.arange(len(x)) / RATE, x) for x in good["drums"].T], axis=1)
    estimates["bass"] = good["bass"][:-800, :1]  # mono and 0.1 s short
    est_dir = tmp_path / "est"
    write(est_dir, {k: v for k, v in estimates.items() if k != "drums"})
    sf.write(est_dir / "drums.flac", estimates["drums"], 16000)
    result = cli("eval", "-r", ref_dir, "-e", est_dir, "--json")
    assert result.exit_code == 0, result.stderr
    err = " ".join(result.stderr.split())
    assert "resampled from 16000 Hz" in err and "trimmed" in err
    assert "zero-padded" in err and "converted to 2" in err
    scores = strict_json(result.stdout)["sources"]
    assert scores["drums"]["MDX_SDR"] > 10  # resampling back and trimming kept the estimate aligned
    assert scores["bass"]["SDR"] is not None


def test_silent_reference_is_left_out_and_reported(cli, tmp_path) -> None:
    refs = stems()
    refs["vocals"] = np.zeros_like(refs["vocals"])
    ref_dir = write(tmp_path / "ref", refs)
    est_dir = write(tmp_path / "est", estimates_of(refs))
    result = cli("eval", "-r", ref_dir, "-e", est_dir, "--json")
    assert result.exit_code == 0, result.stderr
    report = strict_json(result.stdout)
    assert report["sources"]["vocals"]["SDR"] is None and report["sources"]["vocals"]["PES"] is not None
    assert report["skipped"][0]["source"] == "vocals" and "reference is silent" in report["skipped"][0]["reason"]
    assert "vocals: SDR, SIR, ISR, SAR, MDX_SDR left out" in " ".join(result.stderr.split())
    assert report["skipped"][0]["metrics"] == ["SDR", "SIR", "ISR", "SAR", "MDX_SDR"]
    assert all(value is not None for key, value in report["mean"].items() if key != "EPS")
    table = cli("eval", "-r", ref_dir, "-e", est_dir)
    assert table.exit_code == 0 and "nan" not in table.stdout.lower()


def _corrupt(path: Path) -> None:
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing folder", "no such file or folder"),
        ("empty folder", "no audio files"),
        ("renamed stem", "estimate stems without a reference of the same name: voice"),
        ("unknown source", "--sources guitar: no reference stem"),
        ("unreadable audio", "cannot read audio"),
        ("duplicate stem", "two files for the stem 'bass'"),
        ("both formats", "--json and --csv"),
        ("zero window", "--win 0: use 0.1 s or more"),
        ("channel layouts", "3 channels, but the references have 1"),
        ("reference rates", "different sample rates"),
    ],
)
def test_errors_are_one_clear_line(cli, track, tmp_path, case, message) -> None:
    ref_dir, est_dir = track
    args = ["-r", ref_dir, "-e", est_dir]
    if case == "missing folder":
        args = ["-r", tmp_path / "nowhere", "-e", est_dir]
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "notes.txt").write_text("no audio here")
        args = ["-r", ref_dir, "-e", tmp_path / "empty"]
    elif case == "renamed stem":
        (est_dir / "vocals.wav").rename(est_dir / "voice.wav")
    elif case == "unknown source":
        args += ["--sources", "bass,guitar"]
    elif case == "unreadable audio":
        _corrupt(est_dir / "bass.wav")
    elif case == "duplicate stem":
        sf.write(ref_dir / "bass.flac", np.zeros((RATE, 1)), RATE)
    elif case == "both formats":
        args += ["--json", "--csv"]
    elif case == "zero window":
        args += ["--win", "0"]
    elif case == "channel layouts":
        sf.write(est_dir / "bass.wav", np.full((2 * RATE, 3), 0.1), RATE)
    elif case == "reference rates":
        sf.write(ref_dir / "bass.wav", np.full((RATE, 1), 0.1), 2 * RATE)
    result = cli("eval", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("ugosa: error: ") and "Traceback" not in result.stderr
    assert message in " ".join(result.stderr.split())


def test_a_window_longer_than_the_song_is_reported_as_the_window_used(cli, tmp_path):
    ref_dir = write(tmp_path / "ref6", stems(6.0))
    est_dir = write(tmp_path / "est6", estimates_of(stems(6.0)))
    as_json = cli("eval", "-r", ref_dir, "-e", est_dir, "--win", "100", "--hop", "100", "--json")
    assert as_json.exit_code == 0, as_json.stderr
    settings = strict_json(as_json.stdout)["settings"]
    assert settings["frames"] == 1 and settings["win"] == pytest.approx(6.0)
    assert "--win 100" in as_json.stderr and "longer than the song" in as_json.stderr
    table = cli("eval", "-r", ref_dir, "-e", est_dir, "--win", "100")
    assert "win 6 s" in table.stdout and "win 100" not in table.stdout
    short = cli("eval", "-r", ref_dir, "-e", est_dir, "--win", "2", "--hop", "1.5", "--json")
    assert strict_json(short.stdout)["settings"]["win"] == 2.0 and "longer" not in short.stderr

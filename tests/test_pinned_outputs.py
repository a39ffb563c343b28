"""What `separate` writes and what `demo --json` scores, pinned: a refactoring must not change them.

The pins in ``tests/data/pinned_outputs.json`` were recorded from the code before the guided-separation
pipeline was introduced (``UGOSA_WRITE_PINS=1 python -m pytest tests/test_pinned_outputs.py`` rewrites
them; do that only for a change that is meant to alter results, and say so in the commit). Each stem is
pinned by its energy, its mean and 32 samples at fixed positions, written as 32-bit float.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.slow

PINS = Path(__file__).parent / "data" / "pinned_outputs.json"
WRITE = os.environ.get("UGOSA_WRITE_PINS") == "1"
SONG = ("--seed", "1", "--duration", "6")
RUNS = {
    "plain": [],
    "labels": ["--labels", "labels.txt", "--seed", "0"],
    "labels-resplit": ["--labels", "labels.txt", "--seed", "0", "--resplit"],
    "labels-gate": ["--labels", "labels.txt", "--seed", "0", "--gate"],
    "b0-resplit": ["--labels", "labels.txt", "--strategy", "B0", "--resplit"],
    "labels-p-l4": ["--labels", "labels.txt", "--seed", "3", "--strategy", "P-L4:D", "--epochs", "2"],
}


def stem_summary(path: Path) -> dict[str, object]:
    samples, _ = sf.read(path, dtype="float32", always_2d=True)
    positions = np.linspace(0, len(samples) - 1, 32).astype(int)
    return {
        "frames": len(samples),
        "energy": float(np.sum(samples.astype(np.float64) ** 2)),
        "mean": float(np.mean(samples, dtype=np.float64)),
        "samples": samples[positions, 0].astype(float).tolist(),
    }


@pytest.fixture(scope="module")
def pinned() -> dict:
    return {} if WRITE else json.loads(PINS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def recorded():
    """Collects what the tests measured; written to the pins file at the end when UGOSA_WRITE_PINS=1."""
    values: dict[str, object] = {}
    yield values
    if WRITE:
        PINS.parent.mkdir(exist_ok=True)
        PINS.write_text(json.dumps(values, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def check(name: str, value: object, pinned: dict, recorded: dict) -> None:
    recorded[name] = value
    if not WRITE:
        assert name in pinned, f"no pin for {name}"
        assert_close(value, pinned[name], name)


def assert_close(value: object, expected: object, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(value, dict) and set(value) == set(expected), where
        for key in expected:
            assert_close(value[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(value, list) and len(value) == len(expected), where
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=2e-6, err_msg=where)
    elif isinstance(expected, float):
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=2e-6, err_msg=where)
    else:
        assert value == expected, where


@pytest.fixture(scope="module")
def demo_song(tmp_path_factory):
    """Held-out demo song 1 (6 s), its labels, and `demo --json`'s scores of it."""
    from ugosa_cli.cli import common, main

    folder = tmp_path_factory.mktemp("pinned")
    common.configure()
    return folder, main


def run_cli(main, *args: str) -> tuple[int, str]:
    import contextlib
    import io

    from ugosa_cli.cli import common

    common.configure()
    common.STATE.debug = False
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    return code, out.getvalue()


def test_demo_scores_are_unchanged(demo_song, pinned, recorded):
    folder, main = demo_song
    code, out = run_cli(main, "demo", *SONG, "--out", folder / "demo", "--json", "--quiet")
    assert code == 0
    summary = json.loads(out)
    scores = {s["source"]: [s["sdr_before"], s["sdr_after"], s["leakage_before_db"], s["leakage_after_db"]]
              for s in summary["sources"]}
    check("demo", {"scores": scores, "settings": summary["settings"]}, pinned, recorded)


@pytest.mark.parametrize("run", list(RUNS))
def test_separate_writes_the_same_stems(demo_song, pinned, recorded, run, monkeypatch):
    folder, main = demo_song
    song = folder / "demo" / "song.wav"
    if not song.is_file():
        assert run_cli(main, "demo", *SONG, "--out", folder / "demo", "--quiet")[0] == 0
    monkeypatch.chdir(folder / "demo")
    out = folder / f"out-{run}"
    code, stdout = run_cli(main, "separate", "song.wav", "--model", "demo", "-o", out, "--bits", "32",
                           "--quiet", *RUNS[run])
    assert code == 0
    paths = sorted(Path(line) for line in stdout.split())
    assert len(paths) == 4
    check(f"separate/{run}", {p.stem: stem_summary(p) for p in paths}, pinned, recorded)

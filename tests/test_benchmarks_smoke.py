"""The adaptation-gain benchmark runs end to end with tiny settings and prints its tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_adaptation_gain_prints_the_tables(tmp_path):
    scores = tmp_path / "scores.json"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "adaptation_gain.py"), "--songs", "1", "--duration", "3",
        "--strategies", "B0,P-L5:D", "--epochs", "1", "--no-bsseval", "--json", str(scores),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Whole-song SDR (dB; median over songs)" in out
    assert "Leakage: power where the instrument rests" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("B0 ", "P-L5:D "))]
    assert [row[0] for row in rows[:2]] == ["B0", "P-L5:D"]
    assert all(len(row) == 7 for row in rows)  # strategy, #TP, four sources, mean
    assert "best strategy P-L5:D" in out
    report = json.loads(scores.read_text())
    assert {r["strategy"] for r in report["records"]} == {"B0", "P-L5:D"}

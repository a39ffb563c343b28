"""The adaptation-gain benchmark runs end to end with tiny settings and prints its tables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs real scripts end to end

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
    assert "rests in quarters" in out  # the paper's protocol by default
    report = json.loads(scores.read_text())
    assert {r["strategy"] for r in report["records"]} == {"B0", "P-L5:D"}


def test_adaptation_gain_resplit_adds_rows_checked_apart_from_adaptation_alone(tmp_path):
    command = [
        sys.executable, str(ROOT / "benchmarks" / "adaptation_gain.py"), "--songs", "1", "--duration", "3",
        "--strategies", "B0,P-L5:D", "--epochs", "1", "--no-bsseval", "--resplit",
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line.split()[0] for line in result.stdout.splitlines() if line.startswith(("B0", "P-L5:D"))]
    assert rows[:4] == ["B0", "B0+resplit", "P-L5:D", "P-L5:D+resplit"]
    assert "whole-song SDR, adaptation: best strategy P-L5:D:" in result.stdout
    assert "whole-song SDR, adaptation + resplit: best strategy P-L5:D+resplit:" in result.stdout


def _run_json(script: str, *args: str, cwd: Path) -> dict:
    command = [sys.executable, str(ROOT / "benchmarks" / script), *args, "--json"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_separation_speed_compares_against_the_reference_and_matches_its_stems(tmp_path):
    result = _run_json("separation_speed.py", "--tiny", cwd=tmp_path)
    assert set(result["seconds_per_audio_second"]) == {"demucs 2.0.3", "ugosa"}
    assert result["max_abs_diff"] < 1e-4
    assert result["speedup"] > 0 and result["matmul_peak_gflops"] > 0


def test_memory_benchmark_measures_the_real_command(tmp_path):
    result = _run_json("memory.py", "--minutes", "0.05", "--tiny", cwd=tmp_path)
    assert result["stems_written"] == 4
    assert result["peak_rss_mb"] >= result["baseline_rss_mb"] > 0


def test_adaptation_speed_reports_every_strategy_against_the_plain_loop(tmp_path):
    result = _run_json("adaptation_speed.py", "--tiny", "--strategies", "P-L2:D,P-L5:D", cwd=tmp_path)
    assert [row["strategy"] for row in result["rows"]] == ["P-L2:D", "P-L5:D"]
    for row in result["rows"]:
        assert row["plain_epoch_s"] > 0 and row["cached_epoch_s"] > 0
        assert row["uncached_epoch_s"] >= row["cached_epoch_s"]


def test_rest_share_stretches_one_rest_and_prints_the_summary(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "rest_share.py"), "--songs", "1", "--duration", "4",
               "--shares", "0.5", "--epochs", "1"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("   0 drums"))
    assert row[2] == "0.500" and len(row) == 9
    assert "means over songs" in result.stdout


def test_htdemucs_adaptation_cost_reports_steps_and_memory_per_strategy():
    command = [sys.executable, str(ROOT / "benchmarks" / "htdemucs_adaptation.py"), "--tiny", "--steps", "1",
               "--strategies", "P-L3:D,P-L5:D", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {(row["strategy"], row["mode"]): row for row in json.loads(result.stdout)["rows"]}
    assert set(rows) == {(s, m) for s in ("P-L3:D", "P-L5:D") for m in ("ugosa", "plain")}
    assert rows[("P-L3:D", "ugosa")]["trainable_parameters"] > rows[("P-L5:D", "ugosa")]["trainable_parameters"]
    assert all(row["step_seconds"] > 0 and row["peak_rss_mb"] > 100 for row in rows.values())


def test_anchor_cost_times_each_family_with_and_without_the_anchor():
    command = [sys.executable, str(ROOT / "benchmarks" / "anchor_cost.py"), "--tiny", "--steps", "1", "--threads", "1",
               "--strategies", "P-L1:D,P-L5:D", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [(row["family"], row["strategy"]) for row in rows] == [
        (f, s) for f in ("tasnet", "htdemucs") for s in ("P-L1:D", "P-L5:D")]
    assert all(row["step_cpu_s"] > 0 and row["anchored_step_cpu_s"] > 0 for row in rows)


def test_label_robustness_scores_each_kind_of_guidance_with_the_shipped_resplit(tmp_path):
    scores = tmp_path / "scores.json"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "label_robustness.py"), "--songs", "1", "--duration", "4",
        "--epochs", "1", "--threads", "1", "--kinds", "exact,jitter0.5,vocals,rest0.5", "--guards", "0.5",
        "--anchors", "0,0.3",
        "--resplit-variants", "default,mix/mean@0.5", "--json", str(scores),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "resplit default: mode, guard ('unexplained', 0.0)" in out
    assert "jitter0.5@0.5~0: keeps" in out and "mean SDR below B0's:" in out
    report = json.loads(scores.read_text())
    rows = report["records"][0]["rows"]
    assert set(rows) == {f"{k}@0.5~{a}" for k in ("exact", "jitter0.5", "vocals", "rest0.5") for a in ("0", "0.3")}
    assert {"adapted", "+default", "+mix/mean@0.5", "B0+resplit", "B0+mix/mean@0.5"} <= set(rows["exact@0.5~0"])
    # Every source rests in the exact labels: nothing to anchor, the same stems; the vocals alone: anchored.
    same = rows["exact@0.5~0"]["adapted"] == rows["exact@0.5~0.3"]["adapted"]
    assert same and rows["vocals@0.5~0"]["adapted"] != rows["vocals@0.5~0.3"]["adapted"]
    # What separate writes: the adapted stems filtered where every source rests, the filtered B0 stems with the
    # vocals alone.
    assert rows["exact@0.5~0"]["separate"] == rows["exact@0.5~0"]["+default"]
    vocals = rows["vocals@0.5~0.3"]
    assert vocals["separate"] == vocals["B0+resplit"] != vocals["adapted"]
    activity = report["activity"]
    assert activity["exact"]["vocals"]["fp"] == 0 and activity["exact"]["vocals"]["fn"] == 0
    assert activity["vocals"]["drums"]["fn"] == 0 and activity["vocals"]["drums"]["fp"] > 0  # unconstrained
    assert activity["rest0.5"]["bass"]["fn"] == 0 and activity["rest0.5"]["bass"]["fp"] > 0  # rests mostly left out


def test_msst_speed_compares_each_type_against_msst_and_matches_its_stems(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "msst_speed.py"), "--tiny", "--threads", "1", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["type"] for row in rows] == ["bs_roformer", "mel_band_roformer", "scnet"]
    for row in rows:
        assert set(row["per_audio_second"]) == {"msst 0.1.0", "ugosa"}
        assert row["max_abs_diff"] < 1e-4


def _run_script(name: str, *args: str, cwd: Path | None = None) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], capture_output=True, text=True,
                            cwd=cwd, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_separate_gain_scores_what_separate_writes_against_b0_and_the_labels_alone(tmp_path):
    out = tmp_path / "gain.jsonl"
    printed = _run_script("separate_gain.py", "--sets", "synth:3000000", "--duration", "4", "--steps", "2",
                          "--json", str(out))
    record = json.loads(out.read_text())
    assert record["steps"] == 2 and record["decision"] in ("adapted", "pretrained")
    assert len(record["b0"]) == len(record["written"]) == len(record["b0_resplit"]) == 4
    assert "Mean gain over B0" in printed and "synth 3000000: B0" in printed


def test_frontier_scores_each_count_of_steps_of_one_run(tmp_path):
    out = tmp_path / "frontier.jsonl"
    _run_script("frontier.py", "--sets", "synth:3000000", "--duration", "4", "--steps", "1,2", "--json", str(out))
    run = json.loads(out.read_text())["runs"]["P-L1:D@0.003"]
    assert set(run["snapshots"]) == {"1", "2"}
    assert all(len(snapshot["adapted"]) == 4 for snapshot in run["snapshots"].values())
    replayed = _run_script("frontier.py", "--replay", str(out), "--max-steps", "1,2", "--falls", "none,0.007")
    assert replayed.count("frontier ") == 4 and "worst" in replayed  # 2 counts x 2 falls, one file


def test_resplit_modes_scores_each_mode_of_the_re_split():
    printed = _run_script("resplit_modes.py", "--sets", "synth:3000000", "--duration", "4")
    assert "synth 3000000: B0" in printed and "unexplained" in printed and "stems" in printed


def test_adaptation_cost_plans_and_times_each_cut():
    printed = _run_script("adaptation_cost.py", "--tiny", "--windows", "1", "--cuts", "2", "--steps", "1",
                          "--minutes", "0.5", "--threads", "1")
    rows = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    timed, planned = rows
    assert timed["cut"] == 2 and timed["step_cpu_s"] > 0 and timed["planned_step"] > 0
    assert planned["song_minutes"] == 0.5 and planned["plan_steps"] >= 1 and planned["plan_windows"] >= 1

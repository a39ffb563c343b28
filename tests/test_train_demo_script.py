"""scripts/train_demo_model.py runs end to end on a tiny budget and writes a loadable, self-describing model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ugosa_cli.checkpoint import load_model_file, save_checkpoint
from ugosa_cli.demo.synth import SOURCES
from ugosa_cli.fsutil import sha256_file

pytestmark = pytest.mark.slow  # runs real scripts end to end

ROOT = Path(__file__).resolve().parent.parent
TINY_RUN = ["--steps", "2", "--batch", "1", "--segment", "0.5", "--pool", "2", "--song-seconds", "2",
            "--valid-songs", "1", "--valid-every", "1000"]


def train(out_dir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "train_demo_model.py"), *TINY_RUN, "--out-dir", str(out_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def written_model(out_dir: Path) -> Path:
    (path,) = out_dir.glob("demo-*.th")
    assert path.name == f"demo-{sha256_file(path)[:8]}.th"
    return path


def test_training_writes_a_model_named_by_its_hash_with_its_provenance(tmp_path):
    first = train(tmp_path / "first")
    assert first.returncode == 0, first.stderr
    path = written_model(tmp_path / "first")
    loaded = load_model_file(path)
    assert loaded.model.sources == SOURCES
    assert loaded.provenance["steps_done"] == 2 and loaded.provenance["initialised_from"] is None
    assert set(loaded.provenance["validation_sdr_db"]) == set(SOURCES)

    second = train(tmp_path / "second", "--init", str(path), "--consistency", "0.5")
    assert second.returncode == 0, second.stderr
    provenance = load_model_file(written_model(tmp_path / "second")).provenance
    assert provenance["initialised_from"]["sha256"] == loaded.sha256
    assert "0.5 x L1 between the sum of the stems and the mix" in provenance["loss"]


def test_init_from_a_model_of_another_shape_is_refused(tmp_path, tiny_model):
    other = tmp_path / "tiny.th"
    save_checkpoint(other, tiny_model)
    result = train(tmp_path / "out", "--init", str(other))
    assert result.returncode != 0
    assert "is not the demo's" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("demo-*.th"))

"""scripts/train_demo_model.py runs end to end on a tiny budget and writes a loadable, self-describing model."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from ugosa_cli import hub
from ugosa_cli.checkpoint import load_model_file, read_checkpoint, save_checkpoint
from ugosa_cli.demo.synth import SOURCES
from ugosa_cli.fsutil import sha256_file
from ugosa_cli.models.htdemucs import HTDemucs
from ugosa_cli.planning import AdaptationRequest, longest_window, recommendation, resolve_settings

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


TINY_HTDEMUCS = ["--family", "htdemucs", "--channels", "8", "--t-layers", "1", "--t-heads", "1",
                 "--model-segment", "1/2"]


def test_htdemucs_training_writes_a_small_htdemucs_that_adapts_by_ugosas_rule(tmp_path):
    first = train(tmp_path / "first", *TINY_HTDEMUCS, "--baseline", "demo")
    assert first.returncode == 0, first.stderr
    (path,) = (tmp_path / "first").glob("demo_htdemucs-*.th")
    assert path.name == f"demo_htdemucs-{sha256_file(path)[:8]}.th"
    raw = read_checkpoint(path)
    assert raw["family"] == "htdemucs"
    loaded = load_model_file(path)
    assert isinstance(loaded.model, HTDemucs) and loaded.model.sources == SOURCES
    config = loaded.model.config
    assert (config.channels, config.t_layers, config.segment, config.samplerate, config.audio_channels) == (
        8, 1, Fraction(1, 2), 44100, 2)
    provenance = loaded.provenance
    assert provenance["steps_done"] == 2 and provenance["family"] == "htdemucs"
    assert "train mode" in provenance["train_mode"] and "22050 samples" in provenance["train_mode"]
    assert provenance["baseline"]["model"] == "demo" and set(provenance["baseline"]["validation_sdr_db"]) == set(SOURCES)
    # No recommended settings (as the released models): ugosa's, the windows no longer than the model's segment.
    assert recommendation(loaded) == {}
    settings = resolve_settings(AdaptationRequest(), recommendation(loaded), cuda=False,
                                longest_window=longest_window(loaded.model))
    assert settings.window == 0.5 and settings.strategy.name == "P-L2:D"

    # --init FILE --steps 0 re-issues the same weights and says where they came from.
    again = train(tmp_path / "again", *TINY_HTDEMUCS, "--init", str(path), "--steps", "0")
    assert again.returncode == 0, again.stderr
    (copy,) = (tmp_path / "again").glob("demo_htdemucs-*.th")
    reissued = load_model_file(copy)
    assert reissued.provenance["steps_done"] == 0
    assert reissued.provenance["initialised_from"]["sha256"] == loaded.sha256
    state, original = reissued.model.state_dict(), loaded.model.state_dict()
    assert all(torch.equal(state[key], original[key]) for key in original)


def test_htdemucs_training_refuses_examples_longer_than_the_segment_and_a_convtasnet_init(tmp_path):
    longer = train(tmp_path / "longer", *TINY_HTDEMUCS, "--segment", "1")
    assert longer.returncode != 0 and "longer than the model's segment" in longer.stderr
    assert "Traceback" not in longer.stderr
    demo = hub.resolve_model("demo", offline=True)
    other = tmp_path / "demo.th"
    save_checkpoint(other, demo.model)
    refused = train(tmp_path / "out", *TINY_HTDEMUCS, "--init", str(other))
    assert refused.returncode != 0 and "is not the demo's" in refused.stderr and "Traceback" not in refused.stderr

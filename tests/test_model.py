"""The ConvTasNet loads demucs v2 tasnet state dicts unchanged, and our checkpoints round-trip."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest
import torch

from ugosa_cli.checkpoint import load_model_file, save_checkpoint
from ugosa_cli.errors import InputError
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig, build_model, config_from_state_dict
from ugosa_cli.sources import DEFAULT_SOURCES

from conftest import TINY_CONFIG


@pytest.fixture(scope="module")
def full_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return ConvTasNet(ModelConfig()).state_dict()


def test_full_size_tasnet_has_the_published_shape(full_state):
    assert len(full_state) == 366
    assert sum(t.numel() for t in full_state.values()) == 10_977_872
    assert full_state["encoder.conv1d_U.weight"].shape == (256, 2, 20)
    assert full_state["separator.network.2.3.9.net.3.net.0.weight"].shape == (512, 1, 3)
    assert full_state["separator.network.3.weight"].shape == (1024, 256, 1)
    assert full_state["decoder.basis_signals.weight"].shape == (40, 256)


def test_demucs_style_file_loads_with_inferred_hyper_parameters(tmp_path, full_state):
    path = tmp_path / "tasnet-00000000.th"
    torch.save(full_state, path)
    loaded = load_model_file(path)
    assert loaded.model.config == ModelConfig()
    assert loaded.model.sources == DEFAULT_SOURCES
    for key, tensor in loaded.model.state_dict().items():
        assert torch.equal(tensor, full_state[key]), key
    assert len(loaded.sha256) == 64


# Run in a fresh interpreter: the model files are checked against their configuration on PyTorch's meta device,
# where PyTorch's own random initialisers (and hann_window) import its compiler stack, seconds before any work.
FRESH_LOAD = """
import sys
from ugosa_cli.checkpoint import load_model_file
from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsConfig, build_from_config
model = load_model_file(sys.argv[1]).model
config = HTDemucsConfig(channels=8, nfft=512, depth=2, t_layers=1, t_heads=2, samplerate=8000)
build_from_config(config, HTDemucs(config).state_dict())
print("torch._dynamo" in sys.modules)
"""


@pytest.mark.slow  # a subprocess importing PyTorch
def test_loading_a_model_file_leaves_the_compiler_unloaded(tmp_path, tiny_model):
    path = tmp_path / "tasnet.th"
    save_checkpoint(path, tiny_model)
    result = subprocess.run([sys.executable, "-c", FRESH_LOAD, str(path)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_inferred_config_of_a_small_model():
    state = ConvTasNet(TINY_CONFIG).state_dict()
    assert config_from_state_dict(state, samplerate=8000, segment=8000) == TINY_CONFIG


def test_checkpoint_round_trip_keeps_config_provenance_and_outputs(tmp_path, tiny_model):
    path = tmp_path / "adapted.th"
    save_checkpoint(path, tiny_model, {"strategy": "P-L2:D", "loss": [0.5, 0.25]})
    loaded = load_model_file(path)
    assert loaded.model.config == TINY_CONFIG
    assert loaded.provenance == {"strategy": "P-L2:D", "loss": [0.5, 0.25]}
    x = torch.randn(1, 2, 1000)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), tiny_model(x))
    # Our format is readable with weights_only=True by anyone.
    assert torch.load(path, weights_only=True)["format"] == "ugosa-checkpoint"


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


def test_pickle_with_code_is_refused_and_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.th"
    with open(path, "wb") as handle:
        pickle.dump({"encoder.conv1d_U.weight": _RunsCode()}, handle)
    with pytest.raises(InputError, match="refused"):
        load_model_file(path)
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_truncated_file_is_a_clear_error(tmp_path, tiny_model):
    path = tmp_path / "model.th"
    save_checkpoint(path, tiny_model)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(InputError, match="not a readable model file"):
        load_model_file(path)


def test_wrong_shapes_name_the_tensor(tmp_path, tiny_model):
    state = tiny_model.state_dict()
    state["decoder.basis_signals.weight"] = torch.zeros(3, 3)
    with pytest.raises(InputError, match="decoder.basis_signals.weight"):
        build_model(TINY_CONFIG, state)


def test_state_dict_that_is_not_a_tasnet(tmp_path):
    path = tmp_path / "other.th"
    torch.save({"layer.weight": torch.zeros(2)}, path)
    with pytest.raises(InputError, match="not a ConvTasNet state dict"):
        load_model_file(path)

"""MSST model files: YAML configurations read safely and bounded, weights bare or wrapped, loaded strictly.

Also the helpers the other MSST tests build their small models with (:func:`small_config`,
:func:`write_msst`): the test sizes of the three types, at 8 kHz, with a one-second chunk.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from ugosa_cli import hub
from ugosa_cli.checkpoint import MSSTSource, load_model_file, read_model, save_checkpoint
from ugosa_cli.errors import InputError
from ugosa_cli.models.roformer import Roformer, RoformerLayout
from ugosa_cli.msst import load_yaml, parse_config, state_from_content

RATE = 8000
BS_BANDS = (4,) * 8 + (8,) * 8 + (33,)  # 129 bins of a 256-point FFT
TYPES = ("bs_roformer", "mel_band_roformer", "scnet")


def small_config(kind: str, *, target: str | None = None, chunk: int = RATE, overlap: int = 2, batch: int = 4,
                 instruments: tuple[str, ...] | None = None) -> dict[str, Any]:
    """An MSST configuration of the test size: dim 32, depth 1, 2 heads of 16 for the RoFormers; dims
    4, 8, 16, 32 and 2 dual-path layers for SCNet."""
    stems = instruments or (("vocals", "other") if kind != "scnet" else ("drums", "bass", "other", "vocals"))
    roformer = {"dim": 32, "depth": 1, "stereo": True, "num_stems": 1 if target else len(stems),
                "time_transformer_depth": 1, "freq_transformer_depth": 1, "dim_head": 16, "heads": 2,
                "attn_dropout": 0.0, "ff_dropout": 0.0, "flash_attn": True, "stft_n_fft": 256, "stft_hop_length": 64,
                "stft_win_length": 256, "stft_normalized": False, "mask_estimator_depth": 2,
                "multi_stft_resolution_loss_weight": 1.0, "multi_stft_resolutions_window_sizes": (256, 128),
                "multi_stft_hop_size": 32, "multi_stft_normalized": False}
    model: dict[str, Any]
    if kind == "bs_roformer":
        model = {**roformer, "freqs_per_bands": BS_BANDS}
    elif kind == "mel_band_roformer":
        model = {**roformer, "num_bands": 16, "sample_rate": RATE}
    else:
        model = {"sources": list(stems), "audio_channels": 2, "dims": [4, 8, 16, 32], "nfft": 512, "hop_size": 128,
                 "win_size": 512, "normalized": True, "band_SR": [0.175, 0.392, 0.433], "band_stride": [1, 4, 16],
                 "band_kernel": [3, 4, 16], "conv_depths": [3, 2, 1], "compress": 4, "conv_kernel": 3,
                 "num_dplayer": 2, "expand": 1}
    return {
        "audio": {"chunk_size": chunk, "num_channels": 2, "sample_rate": RATE, "min_mean_abs": 0.0},
        "model": model,
        "training": {"instruments": list(stems), "target_instrument": target, "lr": 1.0e-5, "use_amp": True},
        "inference": {"batch_size": batch, "num_overlap": overlap},
    }


def dump_yaml(config: dict[str, Any]) -> str:
    """YAML as msst's released configurations write it: tuples as ``!!python/tuple``."""
    return yaml.dump(config, sort_keys=False)  # PyYAML's default Dumper writes tuples so


def write_msst(folder: Path, kind: str, *, seed: int = 0, name: str | None = None, wrap: str | None = "state_dict",
               perturb: bool = True, **options: Any) -> tuple[Path, Path, Roformer | Any]:
    """A small random model of ``kind`` written as msst does: ``NAME.yaml`` and ``NAME.ckpt`` (its state dict,
    under ``wrap``); returns both paths and our network."""
    config = small_config(kind, **options)
    name = name or kind
    yaml_path, ckpt = folder / f"{name}.yaml", folder / f"{name}.ckpt"
    yaml_path.write_text(dump_yaml(config))
    parsed = parse_config(config, name)
    torch.manual_seed(seed)
    network = new_network(parsed).eval()
    if perturb:
        _perturb(network, seed)
    state = network.state_dict()
    torch.save({wrap: state} if wrap else state, ckpt)
    return yaml_path, ckpt, network


def new_network(parsed: Any) -> Any:
    """A network of a parsed configuration with fresh weights (msst 0.1.0's layout)."""
    from ugosa_cli.models.scnet import SCNet

    if parsed.model_type == "scnet":
        return SCNet(parsed.network, parsed.settings)
    return Roformer(parsed.network, parsed.settings)


def _perturb(network: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for module in network.modules():
            for name, parameter in module.named_parameters(recurse=False):
                if isinstance(module, torch.nn.GroupNorm) or name in ("gamma", "temperature"):
                    parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the YAML -------------------------------------------------------------------------------------------------


def test_the_released_tuple_tag_is_read_and_every_other_python_tag_refused_naming_the_key(tmp_path):
    config = small_config("bs_roformer")
    text = dump_yaml(config)
    assert "!!python/tuple" in text  # as msst's configurations write freqs_per_bands
    assert load_yaml(_write(tmp_path, text))["model"]["freqs_per_bands"] == BS_BANDS
    for payload in ("!!python/object/apply:os.system ['echo hacked']", "!!python/name:os.system ''",
                    "!!python/object:collections.OrderedDict {}", "!!binary aGVsbG8=", "2001-12-14", "!!set {a: null}"):
        hostile = text.replace("  depth: 1\n", f"  depth: {payload}\n")
        with pytest.raises(InputError) as error:
            load_yaml(_write(tmp_path, hostile))
        assert "config.yaml: model.depth: " in error.value.message and "not plain data" in error.value.message


def test_aliases_merge_keys_and_odd_keys_are_refused(tmp_path):
    aliased = "audio: &a {chunk_size: 8000}\nother: *a\n"
    with pytest.raises(InputError, match="other: anchors and aliases are not supported"):
        load_yaml(_write(tmp_path, aliased))
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    with pytest.raises(InputError, match="anchors and aliases"):
        load_yaml(_write(tmp_path, bomb))
    with pytest.raises(InputError, match=r"model: key '1' is not a plain name"):
        load_yaml(_write(tmp_path, "model:\n  1: 2\n"))
    with pytest.raises(InputError, match="not a readable YAML configuration \\(line 2\\)"):
        load_yaml(_write(tmp_path, "model:\n  dim: 1: 2\n"))
    with pytest.raises(InputError, match="expected a mapping"):
        load_yaml(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(InputError, match="larger than 1 MiB"):
        load_yaml(_write(tmp_path, "# " + "x" * (1 << 20) + "\n"))


@pytest.mark.parametrize(("section", "key", "value", "problem"), [
    ("model", "dim", 100000, "model.dim: 100000 is out of range; ugosa takes from 1 to 2048"),
    ("model", "depth", 0, "model.depth: 0 is out of range"),
    ("model", "heads", 1000, "model.heads: 1000 is out of range"),
    ("model", "stft_n_fft", 1 << 20, "model.stft_n_fft: 1048576 is out of range"),
    ("model", "dim_head", "64", "model.dim_head: '64' is not an integer"),
    ("model", "stereo", "yes please", "model.stereo: 'yes please' is not true or false"),
    ("model", "freqs_per_bands", [4] * 30, "model.freqs_per_bands: the bands hold 120 frequency bins"),
    ("audio", "chunk_size", 10**9, "audio.chunk_size: 1000000000 is out of range"),
    ("audio", "sample_rate", 10, "audio.sample_rate: 10 is out of range"),
    ("inference", "num_overlap", 0, "inference.num_overlap: 0 is out of range"),
    ("inference", "batch_size", 10**6, "inference.batch_size: 1000000 is out of range"),
    ("training", "instruments", ["Lead Vocals!"], "training.instruments: 'Lead Vocals!' cannot name a stem"),
])
def test_every_value_that_sizes_work_is_bounded_naming_its_key(section, key, value, problem):
    config = small_config("bs_roformer")
    config[section][key] = value
    with pytest.raises(InputError, match="^song.yaml: " + problem.replace("(", "\\(").replace(")", "\\)")):
        parse_config(config, "song.yaml")


def test_scnet_shapes_that_cannot_run_are_refused():
    for key, value, problem in (("dims", [2, 8, 16], "the first must be twice audio_channels"),
                                ("num_dplayer", 3, "must be even"), ("conv_kernel", 4, "must be odd"),
                                ("band_kernel", [3, 4, 64], "too narrow for band_kernel/band_stride at encoder layer 2"),
                                ("band_SR", [0.6, 0.5, 0.1], "band_SR")):
        config = small_config("scnet")
        config["model"][key] = value
        with pytest.raises(InputError, match=f"model.*{problem}"):
            parse_config(config, "x.yaml")


def test_unknown_model_keys_are_one_error_naming_them():
    config = small_config("mel_band_roformer")
    config["model"]["sage_attention"] = True
    config["model"]["stft_window_fn"] = "hann"
    with pytest.raises(InputError, match="unknown keys in model: 'sage_attention', 'stft_window_fn' \\(not arguments "
                                         "of msst's mel_band_roformer model\\)$"):
        parse_config(config, "x.yaml")
    config["model"]["freqs_per_bands"] = [129]
    with pytest.raises(InputError, match="cannot tell the model type"):
        parse_config(config, "x.yaml")


def test_the_model_type_is_inferred_where_unambiguous_else_asked_for():
    for kind in TYPES:
        assert parse_config(small_config(kind), "x.yaml").model_type == kind
    ambiguous = small_config("bs_roformer")
    del ambiguous["model"]["freqs_per_bands"]  # msst's default bands; a Mel-Band RoFormer could say the same
    with pytest.raises(InputError, match="cannot tell the model type .* give --model-type "
                                         "bs_roformer|mel_band_roformer|scnet"):
        parse_config(ambiguous, "x.yaml")
    ambiguous["model"]["stft_n_fft"] = 2048
    assert parse_config(ambiguous, "x.yaml", "bs_roformer").network.freqs_per_bands[-1] == 129
    declared = small_config("mel_band_roformer")
    declared["training"]["model_type"] = "mel_band_roformer"
    with pytest.raises(InputError, match="--model-type scnet disagrees with training.model_type mel_band_roformer"):
        parse_config(declared, "x.yaml", "scnet")
    declared["training"]["model_type"] = "htdemucs"
    with pytest.raises(InputError, match="training.model_type 'htdemucs': ugosa runs bs_roformer"):
        parse_config(declared, "x.yaml")


def test_missing_sections_and_keys_are_named():
    config = small_config("scnet")
    del config["inference"]
    with pytest.raises(InputError, match="the inference section is missing"):
        parse_config(config, "x.yaml")
    config = small_config("scnet")
    del config["inference"]["num_overlap"]
    with pytest.raises(InputError, match="inference.num_overlap is missing"):
        parse_config(config, "x.yaml")
    config = small_config("scnet", target="vocals")
    config["training"]["target_instrument"] = "piano"
    with pytest.raises(InputError, match="target_instrument 'piano' is not one of"):
        parse_config(config, "x.yaml")


# --- the weights ----------------------------------------------------------------------------------------------


def test_state_dicts_load_bare_or_wrapped_as_msst_writes_them(tmp_path):
    config, ckpt, network = write_msst(tmp_path, "bs_roformer", wrap="model_state_dict")
    state = network.state_dict()
    for wrap in (None, "state_dict", "state", "model_state_dict", "model"):
        content = {wrap: state, "epoch": 3, "optimizer_state_dict": {"lr": 1.0}} if wrap else state
        assert state_from_content(content, "x.ckpt").keys() == state.keys()
    model, provenance = read_model(ckpt, MSSTSource(config))  # as a full training checkpoint holds it
    assert provenance["msst"]["model_type"] == "bs_roformer"
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    torch.save({"optimizer": {"lr": 1.0}}, ckpt)
    with pytest.raises(InputError, match="holds no state dict"):
        read_model(ckpt, MSSTSource(config))


def test_a_state_dict_saved_inside_data_parallel_loads(tmp_path):
    config, ckpt, network = write_msst(tmp_path, "scnet", wrap=None)
    torch.save({f"module.{key}": value for key, value in network.state_dict().items()}, ckpt)
    model, _ = read_model(ckpt, MSSTSource(config))
    assert torch.equal(model.state_dict()["encoder.0.globalconv.weight"], network.encoder[0].globalconv.weight)


def test_weights_that_do_not_match_are_one_error_naming_the_key(tmp_path):
    config, ckpt, network = write_msst(tmp_path, "mel_band_roformer")
    state = network.state_dict()
    wrong = dict(state, **{"band_split.to_features.0.1.weight": torch.zeros(3, 3)})
    torch.save(wrong, ckpt)
    with pytest.raises(InputError, match=r"do not match .*band_split.to_features.0.1.weight has shape \(3, 3\)"):
        read_model(ckpt, MSSTSource(config))
    torch.save({key: value for key, value in state.items() if "mask_estimators" not in key}, ckpt)
    with pytest.raises(InputError, match=r"do not match the mel_band_roformer configuration: missing \['mask_estim"):
        read_model(ckpt, MSSTSource(config))
    torch.save(dict(state, extra=torch.zeros(1)), ckpt)
    with pytest.raises(InputError, match=r"unexpected \['extra'\]"):
        read_model(ckpt, MSSTSource(config))
    dims = yaml.safe_load(config.read_text().replace("!!python/tuple", ""))
    dims["model"]["dim"] = 64
    config.write_text(dump_yaml(dims))
    torch.save(state, ckpt)
    with pytest.raises(InputError, match="do not match"):
        read_model(ckpt, MSSTSource(config))


def test_older_layouts_without_gates_or_with_transformer_norms_load_from_the_state_dict(tmp_path):
    config, ckpt, network = write_msst(tmp_path, "bs_roformer")
    state = {key: value for key, value in network.state_dict().items() if ".to_gates." not in key}
    state["layers.0.0.norm.gamma"] = torch.ones(32)
    state["layers.0.1.norm.gamma"] = torch.ones(32)
    torch.save(state, ckpt)
    model, _ = read_model(ckpt, MSSTSource(config))
    assert isinstance(model, Roformer)
    assert model.config.layout == RoformerLayout(gates=False, transformer_norm=True, final_norm=True,
                                                 rotary_freqs=True)
    mix = torch.randn(1, 2, RATE) * 0.1
    with torch.no_grad():
        assert model(mix).shape == (1, 2, 2, RATE)


def test_pickled_code_in_weights_is_refused_and_never_run(tmp_path):
    config, ckpt, _ = write_msst(tmp_path, "scnet")
    marker = tmp_path / "ran"
    torch.save({"state_dict": _Hostile(marker)}, ckpt)
    with pytest.raises(InputError, match="refused: the file holds Python objects other than tensors"):
        read_model(ckpt, MSSTSource(config))
    assert not marker.exists()


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_safetensors_weights_load_when_the_package_is_there(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    config, _, network = write_msst(tmp_path, "mel_band_roformer")
    weights = tmp_path / "model.safetensors"
    state = {key: value.contiguous() for key, value in network.state_dict().items()}
    safetensors.save_file({key: value.clone() for key, value in state.items()}, str(weights))
    model, _ = read_model(weights, MSSTSource(config))
    assert torch.equal(model.state_dict()["mask_estimators.0.to_freqs.0.0.0.weight"],
                       state["mask_estimators.0.to_freqs.0.0.0.weight"])


def test_safetensors_without_the_package_is_one_clear_error(tmp_path, monkeypatch):
    config, _, _ = write_msst(tmp_path, "scnet")
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(InputError, match="reading .safetensors files needs the safetensors package: pip install"):
        read_model(weights, MSSTSource(config))


def test_msst_weights_without_their_configuration_say_to_give_it(tmp_path, monkeypatch):
    config, ckpt, _ = write_msst(tmp_path, "bs_roformer")
    monkeypatch.setenv("UGOSA_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="MSST\\): give its YAML configuration with --config"):
        hub.resolve_model(str(ckpt))
    with pytest.raises(InputError, match="--model-type scnet needs --config"):
        hub.resolve_model(str(ckpt), model_type="scnet")
    with pytest.raises(InputError, match="--config goes with the weights file .* not with 'tasnet'"):
        hub.resolve_model("tasnet", config=str(config))
    loaded = hub.resolve_model(str(ckpt), config=str(config))
    assert loaded.model.sources == ("vocals", "other") and loaded.provenance["msst"]["config"] == str(config)


@pytest.mark.parametrize("kind", TYPES)
def test_an_adapted_msst_model_is_a_ugosa_checkpoint_that_loads_without_its_configuration(tmp_path, kind):
    mix = torch.randn(1, 2, RATE // 2) * 0.1
    config, ckpt, _ = write_msst(tmp_path, kind, target="vocals" if kind != "scnet" else None)
    model, _ = read_model(ckpt, MSSTSource(config))
    saved = tmp_path / f"{kind}-adapted.th"
    save_checkpoint(saved, model, {"note": "test"})
    again = load_model_file(saved).model
    assert type(again) is type(model) and again.sources == model.sources
    assert again.settings == model.settings  # type: ignore[attr-defined]
    with torch.no_grad():
        torch.testing.assert_close(again(mix), model(mix), rtol=0, atol=0)
    with pytest.raises(InputError, match="a ugosa checkpoint carries its own configuration"):
        read_model(saved, MSSTSource(config))


def test_a_target_model_adds_the_rest_of_the_mixture_as_its_second_source(tmp_path):
    config = small_config("bs_roformer", target="vocals", instruments=("vocals", "instrumental"))
    parsed = parse_config(copy.deepcopy(config), "x.yaml")
    assert parsed.settings.sources == ("vocals", "instrumental")
    three = small_config("mel_band_roformer", target="vocals", instruments=("vocals", "drums", "bass"))
    network = new_network(parse_config(three, "x.yaml")).eval()
    assert network.sources == ("vocals", "instrumental")
    mix = torch.randn(2, 2, RATE) * 0.1
    with torch.no_grad():
        stems = network(mix)
    np.testing.assert_allclose((stems.sum(dim=1) - mix).abs().max().item(), 0, atol=1e-6)

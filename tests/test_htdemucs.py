"""HT-Demucs: demucs v4 weights load unchanged, the stems equal demucs 4.1.0's, and v4 files load safely.

Tests marked ``slow`` install demucs 4.1.0 (``--no-deps``) into ``benchmarks/.reference/demucs-4.1.0`` and
compare against it; run them with ``pytest -m slow``. The fast ones need no reference.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from ugosa_cli import demucs_v4
from ugosa_cli.demucs_v4 import is_demucs_package, pickle_globals, read_demucs_package
from ugosa_cli.errors import InputError
from ugosa_cli.models.htdemucs import (
    FOUR_SOURCES,
    SIX_SOURCES,
    HTDemucs,
    HTDemucsConfig,
    build_from_config,
    build_htdemucs,
    config_from_kwargs,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from reference import htdemucs_kwargs, import_demucs, import_demucs_v4, randomise_scales_and_norms  # noqa: E402

# Same structure as the released model, small enough for milliseconds: 3 layers, 16 channels, 0.5 s at 8 kHz.
SMALL_SIZES = dict(channels=16, nfft=512, depth=3, t_heads=2, bottom_channels=32, t_layers=3, samplerate=8000)
SMALL = HTDemucsConfig(**SMALL_SIZES, segment=Fraction(1, 2))
SEGMENT = 343_980  # 7.8 s at 44.1 kHz


def small_model(seed: int = 0, config: HTDemucsConfig = SMALL) -> HTDemucs:
    torch.manual_seed(seed)
    model = HTDemucs(config)
    randomise_scales_and_norms(model)
    return model.eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().abs().max())


# ---- configuration ---------------------------------------------------------------------------------------


def test_released_kwargs_give_the_released_configurations():
    four = config_from_kwargs(htdemucs_kwargs())
    assert four.sources == FOUR_SOURCES and four.bottom_channels == 512
    assert four.segment == Fraction(39, 5) and four.segment_samples == SEGMENT
    assert four.t_dropout == 0.02
    six = config_from_kwargs(htdemucs_kwargs(six_sources=True))
    assert six.sources == SIX_SOURCES and six.bottom_channels == 0


def test_full_size_model_has_the_published_size():
    model = HTDemucs(config_from_kwargs(htdemucs_kwargs()))
    state = model.state_dict()
    assert len(state) == 533
    assert sum(t.numel() for t in state.values()) == 41_984_456
    assert state["encoder.0.conv.weight"].shape == (48, 4, 8, 1)
    assert state["crosstransformer.layers.1.cross_attn.in_proj_weight"].shape == (1536, 512)
    assert state["channel_upsampler.weight"].shape == (512, 384, 1)
    assert state["freq_emb.embedding.weight"].shape == (512, 48)
    assert (model.sources, model.samplerate, model.audio_channels) == (FOUR_SOURCES, 44100, 2)
    assert model.segment_samples == SEGMENT


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"t_sparse_self_attn": True}, "t_sparse_self_attn=True"),
        ({"t_sparse_cross_attn": True}, "t_sparse_cross_attn=True"),
        ({"wiener_iters": 1}, "wiener_iters=1"),
        ({"multi_freqs": [0.25]}, "multi_freqs=[0.25]"),
        ({"cac": False}, "cac=False"),
        ({"cac": 1}, "cac=1"),
        ({"t_emb": "cape"}, "t_emb='cape'"),
        ({"dconv_mode": 1}, "dconv_mode=1"),
        ({"depth": 6}, "depth=6"),
        ({"segment": 10}, "segment=10"),
        ({"segment": 10**12}, "segment=1000000000000"),  # what sizes work is held to the released values
        ({"samplerate": 10**9}, "samplerate=1000000000"),
        ({"nfft": 2**40}, "nfft=1099511627776"),
        ({"bottom_channels": 0}, "bottom_channels=0"),
        ({"sources": ["vocals", "drums", "bass", "other"]}, "sources=['vocals'"),
        ({"t_dropout": "0.1"}, "t_dropout='0.1'"),
        ({"lstm_layers": 2}, "unknown HT-Demucs setting lstm_layers=2"),
    ],
)
def test_other_configurations_are_refused_naming_the_setting(change, named):
    with pytest.raises(InputError) as caught:
        config_from_kwargs({**htdemucs_kwargs(), **change}, origin="m.th")
    message = caught.value.message
    assert message.startswith("m.th: ") and named in message and "\n" not in message


def test_a_missing_setting_takes_demucs_default_and_is_checked():
    kwargs = htdemucs_kwargs()
    del kwargs["dconv_mode"]  # demucs' default is 1, the released models use 3
    with pytest.raises(InputError, match="dconv_mode=1"):
        config_from_kwargs(kwargs)


def test_segment_is_kept_exact():
    for value in (Fraction(39, 5), 7.8):
        assert config_from_kwargs({**htdemucs_kwargs(), "segment": value}).segment == Fraction(39, 5)


def test_state_dict_mismatch_names_the_key():
    state = small_model().state_dict()
    state["decoder.0.conv_tr.weight"] = torch.zeros(3, 3)
    with pytest.raises(InputError, match="decoder.0.conv_tr.weight has shape"):
        build_from_config(SMALL, state, "x.th")
    del state["decoder.0.conv_tr.weight"]
    with pytest.raises(InputError, match="missing"):
        build_from_config(SMALL, state, "x.th")


def test_fp16_state_loads_as_fp32_in_eval_mode():
    state = {k: v.half() for k, v in small_model().state_dict().items()}
    model = build_from_config(SMALL, state)
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())


# ---- stages, padding, training path ----------------------------------------------------------------------


def test_prefix_and_suffix_reproduce_forward_exactly():
    model = small_model()
    mix = torch.randn(2, 2, 3000)
    with torch.inference_mode():
        full = model(mix)
        encoded = model.encode(mix)
        transformed = model.transform(encoded)
        for split in range(SMALL.depth + 1):
            partial = model.decode_layers(transformed, split)
            assert partial.decoded == split
            assert torch.equal(model.decode(partial), full)
        # The states were not modified: running the suffix again gives the same stems.
        assert torch.equal(model.decode(model.transform(encoded)), full)
    assert full.shape == (2, 4, 2, 3000)
    assert encoded.spec.shape == (2, 64, 4, 32) and encoded.wave.shape == (2, 64, 63)
    assert [s.shape[1] for s in encoded.spec_skips] == [16, 32, 64]


def test_training_a_suffix_from_a_frozen_prefix():
    model = small_model()
    mix = torch.randn(1, 2, 4000)
    with torch.no_grad():
        reference = model(mix)
        prefix = model.decode_layers(model.transform(model.encode(mix)), 1)
    out = model.decode(prefix)  # with gradients: the plain (unfused) operations
    assert max_diff(out, reference) < 1e-5
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder[1:].parameters())
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.crosstransformer.parameters())


def test_training_mode_gradients_reach_every_parameter():
    model = small_model().train()
    mix = torch.randn(1, 2, 4000)
    model(mix).abs().mean().backward()
    unreached = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert unreached == []


def test_dropout_only_in_training_mode_and_the_training_path_equals_inference():
    model = small_model()
    mix = torch.randn(1, 2, SMALL.segment_samples)
    with torch.no_grad():
        evaluated = model(mix)
        assert torch.equal(model(mix), evaluated)
    model.train()
    with torch.no_grad():
        assert max_diff(model(mix), evaluated) > 1e-4  # t_dropout 0.02 in the transformer
    no_dropout = small_model(config=HTDemucsConfig(**SMALL_SIZES, segment=Fraction(1, 2), t_dropout=0.0)).train()
    trained = no_dropout(mix)  # gradients on: unfused DConv, spectral tensors not forced channels-last
    with torch.no_grad():
        assert max_diff(trained, no_dropout.eval()(mix)) < 1e-5


def test_inference_follows_parameter_updates():
    """The inference path caches tensors derived from the DConv parameters; an in-place update (an
    optimiser step, load_state_dict) must reach the next forward."""
    model = small_model()
    mix = torch.randn(1, 2, 4000)
    with torch.no_grad():
        before = model(mix)
        for name, parameter in model.named_parameters():
            if ".dconv." in name:
                parameter.mul_(1.5)
        after = model(mix)
        fresh = build_from_config(SMALL, model.state_dict())(mix)
    assert max_diff(after, before) > 1e-3
    assert torch.equal(after, fresh)
    with torch.inference_mode():  # parameters made here are inference tensors, without version counters
        copied = copy.deepcopy(model)
        first = copied(mix)
        for name, parameter in copied.named_parameters():
            if ".dconv." in name:
                parameter.mul_(0.5)
        assert max_diff(copied(mix), first) > 1e-3


def test_a_short_input_is_padded_to_the_segment_in_eval_mode():
    model = small_model()
    mix = torch.randn(1, 2, 1500)
    with torch.no_grad():
        short = model(mix)
        padded = model(torch.nn.functional.pad(mix, (0, SMALL.segment_samples - 1500)))
        assert short.shape == (1, 4, 2, 1500)
        assert torch.equal(short, padded[..., :1500])
        with pytest.raises(InputError, match="longer than the model's segment"):
            model(torch.randn(1, 2, SMALL.segment_samples + 1))
        assert model.encode(mix, pad_to_segment=False).padded_length == 1500


def test_the_transformer_and_dconv_branches_change_the_stems():
    """Guards the parity tests against passing vacuously: silencing one attention layer (its LayerScales) or
    one DConv moves the small model's stems ten times beyond its parity tolerance (1e-5) or more."""
    model = small_model()
    mix = torch.randn(1, 2, 4000)
    with torch.no_grad():
        base = model(mix)
        for part in ("crosstransformer.layers.1", "crosstransformer.layers_t.2", "encoder.0.dconv", "tdecoder.2.dconv"):
            changed = copy.deepcopy(model)
            for name, parameter in changed.named_parameters():
                if name.startswith(part) and name.endswith(".scale"):
                    parameter.zero_()
            assert max_diff(changed(mix), base) > 1e-4, part


# ---- demucs v4 files --------------------------------------------------------------------------------------

FAKE_DEMUCS = {
    "demucs/__init__.py": "",
    "demucs/htdemucs.py": "class HTDemucs:\n    pass\n",
    "demucs/hdemucs.py": "class HDemucs:\n    pass\n",
    "demucs/demucs.py": "class Demucs:\n    pass\n",
}

WRITER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import torch
    spec = json.load(open(sys.argv[1]))
    payload = torch.load(spec["payload"], weights_only=False)  # our own test data
    module, _, name = spec["klass"].rpartition(".")
    klass = getattr(__import__(module, fromlist=[name]), name)

    class RunsCode:
        def __reduce__(self):
            return (os.system, ("touch " + spec["marker"],))

    package = {"klass": klass, "args": (), "kwargs": payload["kwargs"], "state": payload["state"],
               "training_args": {"epochs": 360, "lr": np.float64(3e-4), "optim": {"beta2": np.float32(0.5)}},
               "metrics": {"best": np.float64(0.125), "count": np.int64(3), "curve": np.arange(3.0)}}
    if spec["evil"]:
        package["training_args"]["hook"] = RunsCode()
    torch.save(package, spec["out"])
    """
)


@pytest.fixture(scope="module")
def fake_demucs(tmp_path_factory) -> Path:
    """A throwaway package named ``demucs`` whose classes are empty: files written with it pickle the same names."""
    root = tmp_path_factory.mktemp("fake-demucs")
    for name, text in FAKE_DEMUCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "writer.py").write_text(WRITER)
    return root


def write_package(fake_demucs: Path, out: Path, kwargs: dict, state: dict, *, klass: str = "demucs.htdemucs.HTDemucs",
                  evil: bool = False) -> Path:
    """Write a file the way demucs does (``torch.save`` of klass/args/kwargs/state/...), in a subprocess."""
    payload = out.with_suffix(".payload")
    torch.save({"kwargs": kwargs, "state": state}, payload)
    spec = out.with_suffix(".json")
    spec.write_text(json.dumps({"payload": str(payload), "klass": klass, "out": str(out), "evil": evil,
                                "marker": str(out.parent / "pwned")}))
    env = {**os.environ, "PYTHONPATH": str(fake_demucs)}
    subprocess.run([sys.executable, str(fake_demucs / "writer.py"), str(spec)], check=True, env=env)
    return out


@pytest.fixture(scope="module")
def released_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return {k: v.half() for k, v in HTDemucs(config_from_kwargs(htdemucs_kwargs())).state_dict().items()}


@pytest.fixture(scope="module")
def package_file(tmp_path_factory, fake_demucs, released_state) -> Path:
    out = tmp_path_factory.mktemp("package") / "955717e8-00000000.th"
    return write_package(fake_demucs, out, htdemucs_kwargs(), released_state)


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_a_demucs_file_loads_without_demucs(package_file, released_state):
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(package_file)
    assert "demucs.htdemucs.HTDemucs" in unsafe  # what plain weights_only=True refuses
    assert is_demucs_package(package_file)
    imported = {name for name in sys.modules if name.startswith("demucs")}
    package = read_demucs_package(package_file)
    assert {name for name in sys.modules if name.startswith("demucs")} == imported  # nothing of demucs imported
    assert package.class_name == "demucs.htdemucs.HTDemucs"
    assert package.kwargs["segment"] == Fraction(39, 5) and package.sources == FOUR_SOURCES
    assert all(t.dtype == torch.float32 for t in package.state.values())
    assert package.training_args == {"epochs": 360, "lr": 3e-4, "optim": {"beta2": 0.5}}
    assert package.metrics == {"best": 0.125, "count": 3}  # the numpy array is left out
    model = package.build_model()
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, released_state[key].float()), key


@pytest.mark.slow  # over a second: CI runs it
def test_the_fallback_unpickler_reads_the_same_file(package_file, monkeypatch):
    monkeypatch.setattr(demucs_v4, "_supports_named_safe_globals", lambda: False)
    package = read_demucs_package(package_file)
    assert package.metrics == {"best": 0.125, "count": 3}  # the numpy array is left out
    assert len(package.state) == 533


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, fake_demucs, released_state, monkeypatch):
    small_state = {"x": torch.zeros(2)}
    zipped = write_package(fake_demucs, tmp_path / "evil.th", htdemucs_kwargs(), small_state, evil=True)
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(b"cposix\nsystem\n(V" + f"touch {tmp_path / 'pwned'}".encode() + b"\ntR.")
    assert "posix.system" in pickle_globals(plain.read_bytes())
    for path in (zipped, plain):
        with pytest.raises(InputError) as caught:
            read_demucs_package(path)
        assert "refused" in caught.value.message and "system" in caught.value.message
        assert str(path) in caught.value.message
    # Past the name check, both loaders refuse on their own.
    allowed = demucs_v4._stand_ins(pickle_globals(demucs_v4._archive_pickle(zipped)))
    for named in (True, False):
        monkeypatch.setattr(demucs_v4, "_supports_named_safe_globals", lambda named=named: named)
        with pytest.raises(Exception, match="system"):
            demucs_v4._load(zipped, allowed)
    assert not (tmp_path / "pwned").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-scan",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_the_scan_names_globals_in_every_pickle_protocol(protocol, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = pickle.dumps({"a": [Fraction(1, 3), _Evil()]}, protocol=protocol)
    names = pickle_globals(data)
    assert "fractions.Fraction" in names and any(name.endswith(".system") for name in names)
    assert not (tmp_path / "pwned-by-scan").exists()


@pytest.mark.parametrize("klass", ["demucs.hdemucs.HDemucs", "demucs.demucs.Demucs"])
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_other_demucs_models_are_refused(tmp_path, fake_demucs, klass):
    path = write_package(fake_demucs, tmp_path / "other.th", htdemucs_kwargs(), {"x": torch.zeros(1)}, klass=klass)
    assert is_demucs_package(path)
    with pytest.raises(InputError, match=f"{klass} model, which is not supported; ugosa supports demucs v4 HTDemucs"):
        read_demucs_package(path)


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_quantized_files_are_refused(tmp_path, fake_demucs):
    state = {"__quantized": True, "quantized": [torch.zeros(3, dtype=torch.uint8)]}
    path = write_package(fake_demucs, tmp_path / "q.th", htdemucs_kwargs(), state)
    with pytest.raises(InputError, match="quantized demucs models are not supported"):
        read_demucs_package(path)


@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_an_unknown_setting_is_refused_by_name(tmp_path, fake_demucs):
    path = write_package(fake_demucs, tmp_path / "k.th", {**htdemucs_kwargs(), "t_fancy": 3}, {"x": torch.zeros(1)})
    with pytest.raises(InputError, match=r"k\.th: unknown HT-Demucs setting t_fancy=3"):
        read_demucs_package(path)


def test_corrupt_and_truncated_files_are_named_as_such(tmp_path, package_file):
    data = package_file.read_bytes()
    cases = {
        "truncated.th": data[: len(data) // 2],
        "cut-pickle.th": data[:4000],
        "noise.th": os.urandom(5000),
        "empty.th": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError) as caught:
            read_demucs_package(path)
        message = caught.value.message
        assert message.startswith(str(path)) and "corrupt or truncated" in message, (name, message)
        assert "could run code" not in message
        assert not is_demucs_package(path)
    with pytest.raises(InputError, match="no such model file"):
        read_demucs_package(tmp_path / "missing.th")


def test_a_plain_state_dict_is_not_a_demucs_package(tmp_path):
    path = tmp_path / "plain.th"
    torch.save({"w": torch.zeros(2)}, path)
    assert not is_demucs_package(path)
    with pytest.raises(InputError, match="not a demucs v4 model file"):
        read_demucs_package(path)


# ---- against demucs 4.1.0 (slow: installs the reference) -------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    return import_demucs_v4()


@pytest.mark.slow
@pytest.mark.parametrize("six_sources", [False, True], ids=["htdemucs and htdemucs_ft", "htdemucs_6s"])
def test_released_state_dicts_load_strictly(reference, six_sources):
    ref_class, _ = reference
    kwargs = htdemucs_kwargs(six_sources)
    torch.manual_seed(0)
    theirs = ref_class(**copy.deepcopy(kwargs)).state_dict()
    ours = HTDemucs(config_from_kwargs(kwargs)).state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}
    model = build_htdemucs(kwargs, {k: v.half() for k, v in theirs.items()})
    assert model.sources == tuple(kwargs["sources"])


@pytest.mark.slow
def test_small_model_matches_demucs_at_any_length_and_in_training_mode(reference):
    ref_class, _ = reference
    kwargs = {**htdemucs_kwargs(), **SMALL_SIZES, "segment": Fraction(1, 2), "t_dropout": 0.0}
    torch.manual_seed(0)
    theirs = ref_class(**kwargs)
    randomise_scales_and_norms(theirs)
    ours = build_from_config(HTDemucsConfig(**SMALL_SIZES, segment=Fraction(1, 2), t_dropout=0.0), theirs.state_dict())
    theirs.eval()
    for length in (4000, 3001, 777, 100):
        mix = torch.randn(1, 2, length)
        with torch.no_grad():
            assert max_diff(ours(mix), theirs(mix)) < 1e-5, length
    theirs.train()
    ours.train()
    mix = torch.randn(1, 2, 2500)  # training mode: no padding to the segment in either
    assert max_diff(ours(mix), theirs(mix)) < 1e-5


@pytest.fixture(scope="module")
def full_size_pair(reference):
    """The released htdemucs structure with random weights, LayerScales and norms: demucs' and ours."""
    ref_class, _ = reference
    torch.manual_seed(0)
    theirs = ref_class(**htdemucs_kwargs())
    randomise_scales_and_norms(theirs)
    theirs.eval()
    return theirs, build_htdemucs(htdemucs_kwargs(), theirs.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize("length", [SEGMENT, 3 * 44100], ids=["one segment", "3 s (padded inside)"])
def test_full_size_stems_equal_demucs(full_size_pair, length):
    theirs, ours = full_size_pair
    mix = torch.randn(1, 2, length, generator=torch.Generator().manual_seed(length))
    with torch.inference_mode():
        expected = theirs(mix)
        got = ours(mix)
    assert got.shape == expected.shape == (1, 4, 2, length)
    assert max_diff(got, expected) < 1e-4


@pytest.mark.slow
def test_a_file_saved_by_demucs_loads_to_the_same_model(tmp_path, reference):
    ref_class, _ = reference
    from demucs.states import get_state

    torch.manual_seed(5)
    theirs = ref_class(**htdemucs_kwargs())
    randomise_scales_and_norms(theirs)
    path = tmp_path / "955717e8-00000000.th"
    state = get_state(theirs, None, half=True)  # demucs' own fp16 export
    content = {"klass": ref_class, "args": (), "kwargs": htdemucs_kwargs(), "state": state, "training_args": {"a": 1}}
    torch.save(content, path)
    package = read_demucs_package(path)
    ours = package.build_model()
    theirs.load_state_dict({k: v.float() for k, v in package.state.items()})
    mix = torch.randn(1, 2, 44100)
    with torch.inference_mode():
        assert max_diff(ours(mix), theirs.eval()(mix)) < 1e-4


@pytest.mark.slow
def test_both_demucs_versions_work_in_one_process(reference):
    """demucs 2.0.3 (the ConvTasNet reference) and 4.1.0 share the package name; each import swaps them."""
    tasnet, _ = import_demucs()
    assert Path(sys.modules["demucs.tasnet"].__file__).parent.parent.name == ".reference"
    assert "demucs.htdemucs" not in sys.modules
    torch.manual_seed(0)
    assert tasnet(sources=list(FOUR_SOURCES), N=8, L=4, B=8, H=8, X=1, R=1)(torch.randn(1, 2, 64)).shape[1] == 4
    ref_again, _ = import_demucs_v4()
    assert Path(sys.modules["demucs.htdemucs"].__file__).parent.parent.name == "demucs-4.1.0"
    assert sys.modules["demucs"].__version__ == "4.1.0" and "demucs.tasnet" not in sys.modules
    assert ref_again(**htdemucs_kwargs()).state_dict().keys() == reference[0](**htdemucs_kwargs()).state_dict().keys()


@pytest.mark.slow
def test_speed_benchmark_runs_and_matches(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "htdemucs_speed.py"), "--tiny", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["max_abs_diff"] < 1e-4
    assert report["seconds_per_audio_second"]["ugosa"] > 0 and report["seconds_per_audio_second"]["demucs 4.1.0"] > 0

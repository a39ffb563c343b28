"""HT-Demucs through ugosa's separation loop and CLI: the stems equal demucs 4.1.0's ``apply_model``.

Fast tests check the loop's own promises on a small HT-Demucs (streaming equals the whole-array path,
with shifts and bags). Slow tests install demucs 4.1.0 into ``benchmarks/.reference`` and compare against
``apply_model`` (segments, the padding of the last chunk, shifts, bags), then run ``ugosa separate`` on a
full-size demucs v4 file, from disk and over a local HTTP server, against demucs' stems of the same song.
"""

from __future__ import annotations

import hashlib
import json
import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_htdemucs import (  # noqa: F401 - fake_demucs is a fixture
    SMALL_SIZES,
    fake_demucs,
    max_diff,
    randomise_scales_and_norms,
    small_model,
    write_package,
)
from test_hub import hub_env, server  # noqa: F401 - the local model server

from ugosa_cli.audio import Audio
from ugosa_cli.demucs_v4 import read_demucs_package
from ugosa_cli.errors import InputError
from ugosa_cli.models.bag import ModelBag
from ugosa_cli.models.htdemucs import HTDemucsConfig, build_from_config
from ugosa_cli.separation import SeparationOptions, check_segment, separate_array, separate_blocks, separate_tensor

RATE = 8000  # the small model's rate; its segment is 0.5 s = 4000 samples


def _mix(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(t.shape)
    return np.stack([tone, 0.8 * tone + 0.05 * rng.standard_normal(t.shape)]).astype(np.float32)


@pytest.mark.parametrize("options", [SeparationOptions(), SeparationOptions(shifts=2, seed=5),
                                     SeparationOptions(overlap=0.5, segment=0.3)], ids=["plain", "shifts", "short"])
@pytest.mark.parametrize("bag", [False, True], ids=["model", "bag"])
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_streaming_equals_the_whole_array(options, bag):
    model = ModelBag([small_model(1), small_model(2)], [[1, 0, 1, 0], [0, 1, 1, 1]]) if bag else small_model(1)
    mix = _mix(2.3)
    whole = separate_array(model, mix, options)
    audio = Audio(mix, RATE, "song")
    streamed = np.concatenate(list(separate_blocks(model, _Blocks(audio, 1537), options)), axis=-1)
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=2e-5)
    assert streamed.shape == (4, 2, mix.shape[1])


class _Blocks:
    """Audio read in blocks of an odd size (the loop must not depend on the block boundaries)."""

    def __init__(self, audio: Audio, size: int) -> None:
        self.audio, self.size = audio, size
        self.source, self.samplerate, self.channels, self.frames = audio.source, audio.samplerate, 2, audio.frames

    def blocks(self, size: int = 0):
        return self.audio.blocks(self.size)


def test_a_bag_with_one_hot_weights_takes_each_source_from_its_model():
    first, second = small_model(1), small_model(2)
    bag = ModelBag([first, second], [[1, 1, 0, 0], [0, 0, 1, 1]])
    mix = torch.from_numpy(_mix(1.2))
    stems = separate_tensor(bag, mix)
    torch.testing.assert_close(stems[:2], separate_tensor(first, mix)[:2], rtol=0, atol=1e-6)
    torch.testing.assert_close(stems[2:], separate_tensor(second, mix)[2:], rtol=0, atol=1e-6)


def test_a_segment_longer_than_the_models_is_refused():
    model = small_model(1)
    check_segment(model, 0.5)
    with pytest.raises(InputError, match="takes no longer segment"):
        check_segment(model, 0.6)


# --- against demucs 4.1.0 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demucs4():
    from reference import import_demucs_v4

    import_demucs_v4()
    from demucs.apply import BagOfModels, apply_model
    from demucs.htdemucs import HTDemucs

    return HTDemucs, BagOfModels, apply_model


def _pair(demucs4, seed: int):
    """A small demucs HTDemucs with random weights and ours with the same state dict."""
    from reference import htdemucs_kwargs

    ref_class, _, _ = demucs4
    kwargs = {**htdemucs_kwargs(), **SMALL_SIZES, "segment": Fraction(1, 2)}
    torch.manual_seed(seed)
    theirs = ref_class(**kwargs)
    randomise_scales_and_norms(theirs, seed)
    config = HTDemucsConfig(**SMALL_SIZES, segment=Fraction(1, 2))
    return theirs.eval(), build_from_config(config, theirs.state_dict())


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [0.3, 0.5, 2.3, 3.1], ids=["shorter", "one segment", "2.3 s", "3.1 s"])
@pytest.mark.parametrize("shifts", [0, 2])
def test_stems_equal_apply_model(demucs4, seconds, shifts):
    _, _, apply_model = demucs4
    theirs, ours = _pair(demucs4, 3)
    mix = torch.from_numpy(_mix(seconds, seed=int(seconds * 10)))
    random.seed(11)
    with torch.no_grad():
        expected = apply_model(theirs, mix[None], shifts=shifts, split=True, overlap=0.25)[0]
    got = separate_tensor(ours, mix, SeparationOptions(shifts=shifts, seed=11))
    assert got.shape == expected.shape
    assert max_diff(got, expected) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("shifts", [0, 1])
def test_a_bag_equals_demucs_bag_of_models(demucs4, shifts):
    _, bag_class, apply_model = demucs4
    (theirs_a, ours_a), (theirs_b, ours_b) = _pair(demucs4, 4), _pair(demucs4, 5)
    weights = [[1.0, 0.0, 1.0, 0.5], [0.0, 1.0, 1.0, 0.5]]
    theirs = bag_class([theirs_a, theirs_b], weights)
    ours = ModelBag([ours_a, ours_b], weights)
    mix = torch.from_numpy(_mix(1.7, seed=2))
    random.seed(3)
    with torch.no_grad():
        expected = apply_model(theirs, mix[None], shifts=shifts, split=True, overlap=0.25)[0]
    got = separate_tensor(ours, mix, SeparationOptions(shifts=shifts, seed=3))
    assert max_diff(got, expected) < 1e-4


@pytest.fixture(scope="module")
def full_size_file(tmp_path_factory, demucs4):
    """A demucs v4 file of the released htdemucs configuration (random weights, LayerScales and norms), saved
    as demucs does, named by its hash; and demucs' own model of it."""
    from demucs.states import get_state
    from reference import htdemucs_kwargs

    ref_class, _, _ = demucs4
    torch.manual_seed(7)
    theirs = ref_class(**htdemucs_kwargs())
    randomise_scales_and_norms(theirs, 7)
    folder = tmp_path_factory.mktemp("v4")
    staging = folder / "staging.th"
    torch.save({"klass": ref_class, "args": (), "kwargs": htdemucs_kwargs(), "state": get_state(theirs, None, half=True),
                "training_args": {}}, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    path = folder / f"955717e8-{digest[:8]}.th"
    staging.rename(path)
    theirs.load_state_dict(read_demucs_package(path).state)  # the weights as stored: rounded to fp16
    return path, theirs.eval()


@pytest.fixture(scope="module")
def song_and_expected(tmp_path_factory, full_size_file, demucs4):
    """A 9 s stereo song (two segments) and demucs 4.1.0's stems of it, as demucs' Separator makes them, but for
    the mean of the song: ugosa gives each of the 4 stems a quarter of it, demucs all of it."""
    _, _, apply_model = demucs4
    _, theirs = full_size_file
    mix = _mix(9.0, seed=9, rate=44100)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, mix.T, 44100, subtype="FLOAT")
    wav = torch.from_numpy(mix)
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std()
    with torch.no_grad():
        out = apply_model(theirs, ((wav - mean) / (std + 1e-8))[None], shifts=0, split=True, overlap=0.25)[0]
    return path, (out * (std + 1e-8) + mean / 4).numpy()


def _stems(stdout: str) -> np.ndarray:
    paths = [Path(line) for line in stdout.split()]
    assert [p.stem for p in paths] == ["drums", "bass", "other", "vocals"]
    return np.stack([sf.read(p, dtype="float32", always_2d=True)[0].T for p in paths])


@pytest.mark.slow
def test_separate_a_demucs_v4_file_gives_demucs_stems(cli, tmp_path, full_size_file, song_and_expected):
    path, _ = full_size_file
    song, expected = song_and_expected
    result = cli("separate", song, "--model", path, "-o", tmp_path / "out", "--bits", "32", "--clip-mode", "none")
    assert result.exit_code == 0, result.stderr
    assert np.abs(_stems(result.stdout) - expected).max() < 1e-4


@pytest.mark.slow
def test_separate_a_demucs_v4_url_gives_demucs_stems(cli, tmp_path, server, hub_env, full_size_file,
                                                     song_and_expected):
    path, _ = full_size_file
    song, expected = song_and_expected
    server.files[f"v4/{path.name}"] = path.read_bytes()
    url = server.url(f"v4/{path.name}")
    result = cli("separate", song, "-n", url, "-o", tmp_path / "out", "--bits", "32", "--clip-mode", "none")
    assert result.exit_code == 0, result.stderr
    assert np.abs(_stems(result.stdout) - expected).max() < 1e-4
    assert server.requests == [f"v4/{path.name}"]


# --- refusals through the command line ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["code", "foreign class", "quantized", "unknown setting"])
@pytest.mark.slow  # a subprocess or a reference install: CI runs it
def test_a_bad_demucs_v4_file_is_refused_with_exit_2_and_nothing_runs(cli, tmp_path, write_wav, fake_demucs, kind):
    from reference import htdemucs_kwargs

    kwargs, state, klass = htdemucs_kwargs(), {"x": torch.zeros(1)}, "demucs.htdemucs.HTDemucs"
    if kind == "foreign class":
        klass = "demucs.hdemucs.HDemucs"
    elif kind == "quantized":
        state = {"__quantized": True, "quantized": [torch.zeros(3, dtype=torch.uint8)]}
    elif kind == "unknown setting":
        kwargs = {**kwargs, "t_fancy": 3}
    model = write_package(fake_demucs, tmp_path / "model.th", kwargs, state, klass=klass, evil=kind == "code")
    song = write_wav("song.wav", seconds=0.5, samplerate=44100)
    result = cli("separate", song, "--model", model, "-o", tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    assert "model.th" in result.stderr and "Traceback" not in result.stderr
    expected = {"code": "refused", "foreign class": "not supported", "quantized": "quantized",
                "unknown setting": "t_fancy"}[kind]
    assert expected in result.stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_registry_bag_downloads_verifies_caches_and_separates(cli, tmp_path, server, hub_env, monkeypatch,
                                                              fake_demucs, write_wav):
    """``htdemucs_ft`` the way the registry serves it: four files, each checked against its name's hash,
    cached, listed, and combined with one-hot weights (four copies of one model give that model's stems)."""
    from reference import htdemucs_kwargs

    from ugosa_cli import hub
    from ugosa_cli.models.htdemucs import HTDemucs, config_from_kwargs

    torch.manual_seed(2)
    state = {k: v.half() for k, v in HTDemucs(config_from_kwargs(htdemucs_kwargs())).state_dict().items()}
    staging = write_package(fake_demucs, tmp_path / "staging.th", htdemucs_kwargs(), state)
    content = staging.read_bytes()
    digest = hashlib.sha256(content).hexdigest()[:8]
    files = tuple(f"{signature}-{digest}.th" for signature in ("aaaa0001", "aaaa0002", "aaaa0003", "aaaa0004"))
    for file in files:
        server.files[f"models/{file}"] = content
    entry = hub.ModelEntry("htdemucs_ft", files, "test bag", root=hub.V4_ROOT, weights=hub.REGISTRY["htdemucs_ft"].weights)
    monkeypatch.setitem(hub.REGISTRY, "htdemucs_ft", entry)
    monkeypatch.setitem(hub.REGISTRY, "htdemucs", hub.ModelEntry("htdemucs", files[:1], "test single", root=hub.V4_ROOT))

    result = cli("model", "download", "htdemucs_ft")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == [str(hub_env / file) for file in files]
    assert sorted(server.requests) == sorted(f"models/{file}" for file in files)
    listed = {row["name"]: row for row in json.loads(cli("model", "list", "--json").stdout)["models"]}
    assert listed["htdemucs_ft"]["available"] and listed["htdemucs_ft"]["size"] == 4 * len(content)

    song = write_wav("song.wav", seconds=1.0, samplerate=44100)
    stems = {}
    for name in ("htdemucs_ft", "htdemucs"):
        out = cli("separate", song, "--model", name, "-o", tmp_path / name, "--bits", "32", "--offline")
        assert out.exit_code == 0, out.stderr
        stems[name] = _stems(out.stdout)
    assert np.abs(stems["htdemucs_ft"] - stems["htdemucs"]).max() < 1e-5
    assert len(server.requests) == 4  # everything came from the cache

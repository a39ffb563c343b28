"""BS-RoFormer, Mel-Band RoFormer and SCNet through ugosa's separation loop and CLI: the stems equal msst 0.1.0's
``demix``.

Fast tests check the loop's own promises (msst's fade rule, streaming equals the whole-array path, the split
of each cut point equals the network). Slow tests install msst 0.1.0 into ``benchmarks/.reference``, build
each type from a small configuration with msst's own loader, perturb every norm and temperature, and
compare: the mel filterbank against librosa's, the stems of ``ugosa separate`` (from a file and from a URL
on a local HTTP server, with a ``#sha256=`` pin) against ``demix`` on a short and a multi-chunk clip.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_htdemucs_separation import _Blocks
from test_hub import hub_env, server  # noqa: F401 - the local model server
from test_msst_config import RATE, TYPES, small_config, write_msst

from ugosa_cli.audio import Audio
from ugosa_cli.checkpoint import MSSTSource, read_model
from ugosa_cli.errors import InputError
from ugosa_cli.models import family_of
from ugosa_cli.models.mel import mel_band_membership, mel_filterbank
from ugosa_cli.separation import (
    SeparationOptions,
    check_options,
    fade_border,
    msst_fades,
    separate_array,
    separate_blocks,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # reference.py: the msst installer
SHORT = 0.4  # seconds: less than half a chunk, so msst pads it with zeros and reflects nothing
LONG = 2.75  # seconds: 8 chunks of 1 s every 0.5 s; the last batch of 4 reaches into the song


def _mix(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 0.7 * t) + 0.1 * rng.standard_normal(t.shape)
    return np.stack([tone, 0.7 * tone + 0.05 * rng.standard_normal(t.shape)]).astype(np.float32)


def test_msst_fades_depend_on_the_batches_as_in_demix():
    # batches of 4 chunks out of 10: [0-3] [4-7] [8-9]
    assert [msst_fades(i, 10, 4) for i in (0, 3, 4, 7)] == [(True, True)] * 4
    assert [msst_fades(i, 10, 4) for i in (8, 9)] == [(True, False)] * 2  # the last batch: no fade-out
    assert [msst_fades(i, 10, 1) for i in (0, 1, 9)] == [(False, True), (True, True), (True, False)]
    assert msst_fades(0, 1, 4) == (False, True)  # one chunk in all: demix keeps its fade-out
    assert fade_border(RATE * 3, RATE, RATE // 2) == RATE // 2
    assert fade_border(RATE, RATE, RATE // 2) == 0  # no longer than twice the border: not reflected


@pytest.mark.parametrize("kind", TYPES)
def test_streaming_equals_the_whole_array(tmp_path, kind):
    config, ckpt, _ = write_msst(tmp_path, kind, batch=3, overlap=2)
    model, _ = read_model(ckpt, MSSTSource(config))
    mix = _mix(2.0)
    whole = separate_array(model, mix, SeparationOptions(batch_size=2))
    streamed = np.concatenate(list(separate_blocks(model, _Blocks(Audio(mix, RATE, "song"), 1537))), axis=-1)
    np.testing.assert_allclose(streamed, whole, rtol=0, atol=2e-6)


@pytest.mark.parametrize("kind", TYPES)
def test_each_cut_point_splits_the_network_into_a_prefix_and_a_suffix_that_make_its_stems(tmp_path, kind):
    config, ckpt, _ = write_msst(tmp_path, kind, target="vocals" if kind == "bs_roformer" else None)
    model, _ = read_model(ckpt, MSSTSource(config))
    family = family_of(model)
    window = torch.from_numpy(_mix(0.5)[None])
    with torch.no_grad():
        expected = model(window)
        for cut in family.cuts(model):
            split = family.split(model, cut)
            torch.testing.assert_close(split.suffix(split.prefix(window), window.shape[-1]), expected, rtol=0,
                                       atol=1e-5)


def test_shifts_are_refused_for_msst_models(tmp_path):
    config, ckpt, _ = write_msst(tmp_path, "scnet")
    model, _ = read_model(ckpt, MSSTSource(config))
    with pytest.raises(InputError, match="separate without shifts, as msst does"):
        check_options(model, SeparationOptions(shifts=1))


# --- against msst 0.1.0 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def msst():
    from reference import import_msst

    return import_msst()


@pytest.mark.slow
def test_the_mel_filterbank_equals_librosas(msst):
    import librosa

    for rate, n_fft, bands in ((44100, 2048, 60), (44100, 2048, 128), (48000, 4096, 60), (8000, 256, 16),
                               (22050, 1024, 40), (32000, 2048, 256)):
        expected = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=bands)
        ours = mel_filterbank(rate, n_fft, bands)
        assert ours.dtype == expected.dtype and np.array_equal(ours, expected), (rate, n_fft, bands)
        member = expected > 0
        member[0, 0] = member[-1, -1] = True
        assert np.array_equal(mel_band_membership(rate, n_fft, bands), member)


def _reference(msst, folder: Path, kind: str, **options):
    """msst's model of a small configuration, its files and msst's configuration (reference.msst_model_files)."""
    from reference import msst_model_files

    return msst_model_files(folder, kind, small_config(kind, **options), TYPES.index(kind))


def _demix(msst, theirs, config, kind: str, mix: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        stems = msst.demix(config, theirs, mix, "cpu", kind)
    return np.stack([stems[name] for name in stems])


def _written(stdout: str) -> np.ndarray:
    return np.stack([sf.read(line, dtype="float32", always_2d=True)[0].T for line in stdout.split()])


@pytest.mark.slow
@pytest.mark.parametrize("kind", TYPES)
def test_separate_equals_msst_demix_from_a_file_and_from_a_url(msst, kind, cli, tmp_path, server, hub_env):
    config_path, weights, theirs, config = _reference(msst, tmp_path, kind)
    server.files[f"m/{weights.name}"] = weights.read_bytes()
    server.files["m/config.yaml"] = config_path.read_bytes()
    pin = hashlib.sha256(weights.read_bytes()).hexdigest()
    for seconds, from_url in ((SHORT, False), (LONG, True)):
        mix = _mix(seconds, seed=int(seconds * 10))
        song = tmp_path / f"song{seconds:g}.wav"
        sf.write(song, mix.T, RATE, subtype="FLOAT")
        model_spec = server.url(f"m/{weights.name}#sha256={pin}") if from_url else weights
        config_spec = server.url("m/config.yaml") if from_url else config_path
        result = cli("separate", song, "--model", model_spec, "--config", config_spec, "-o", tmp_path / "out",
                     "--bits", "32", "--clip-mode", "none")
        assert result.exit_code == 0, result.stderr
        expected = _demix(msst, theirs, config, kind, mix)
        got = _written(result.stdout)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-4, (seconds, np.abs(got - expected).max())
    assert sorted(server.requests) == sorted([f"m/{weights.name}", "m/config.yaml"])  # each downloaded once


@pytest.mark.slow
def test_a_vocal_model_with_a_target_equals_demix_and_its_rest_is_the_mixture_minus_it(msst, tmp_path):
    for kind, batch in (("bs_roformer", 1), ("mel_band_roformer", 4)):
        config_path, weights, theirs, config = _reference(msst, tmp_path, kind, target="vocals", batch=batch)
        model, _ = read_model(weights, MSSTSource(config_path))
        mix = _mix(LONG, seed=5)
        expected = _demix(msst, theirs, config, kind, mix)[0]
        stems = separate_array(model, mix)
        assert model.sources == ("vocals", "other")
        assert np.abs(stems[0] - expected).max() < 1e-4
        assert np.abs(stems[1] - (mix - expected)).max() < 1e-4

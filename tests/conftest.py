"""Shared fixtures: run the CLI in-process, synthesize audio, build small models."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ugosa_cli.checkpoint import save_checkpoint
from ugosa_cli.cli import common, main
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig

# Tests use small models, where one thread is faster than two and immune to CPU oversubscription.
torch.set_num_threads(1)

# A ConvTasNet small enough to run in milliseconds, with the full model's structure (4 sources, stereo).
TINY_CONFIG = ModelConfig(N=16, L=8, B=8, H=16, P=3, X=2, R=4, audio_channels=2, samplerate=8000, segment=8000)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run ``ugosa ARGS`` in-process through the real entry point, in a scratch folder; optional stdin bytes."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: bytes | None = None) -> CliResult:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        common.configure()
        common.STATE.debug = False
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


def tone_mix(seconds: float, samplerate: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    """A chord plus a little noise, (frames, channels) float32 in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * samplerate)) / samplerate
    mono = sum(np.sin(2 * np.pi * f * t) for f in (110.0, 220.0, 330.0, 523.25)) / 8
    mono = mono + 0.02 * rng.standard_normal(t.shape)
    out = np.stack([mono * (1 - 0.2 * c) for c in range(channels)], axis=1)
    return out.astype(np.float32)


@pytest.fixture
def write_wav(tmp_path):
    """Write a synthesized clip and return its path."""

    def make(name: str = "song.wav", seconds: float = 1.0, samplerate: int = 8000, channels: int = 2, **kw) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, tone_mix(seconds, samplerate, channels), samplerate, **kw)
        return path

    return make


@pytest.fixture
def tiny_model() -> ConvTasNet:
    torch.manual_seed(0)
    return ConvTasNet(TINY_CONFIG).eval()


@pytest.fixture
def model_file(tmp_path, tiny_model) -> Path:
    """The tiny model saved as a ugosa checkpoint."""
    path = tmp_path / "tiny.th"
    save_checkpoint(path, tiny_model)
    return path

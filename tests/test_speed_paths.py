"""The inference fast paths compute the same function as the autograd path, which training still uses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig, global_moments
from ugosa_cli.separation import SeparationOptions, separate_array

# Dilations up to 8 against 40-frame inputs: taps fall on the padding at both ends, some beyond the input.
CONFIG = ModelConfig(N=16, L=8, B=8, H=16, P=3, X=4, R=2, samplerate=8000, segment=800)


@pytest.fixture(scope="module")
def model() -> ConvTasNet:
    torch.manual_seed(3)
    net = ConvTasNet(CONFIG).eval()
    with torch.no_grad():  # non-trivial norms and slopes, so folding them is really exercised
        for name, parameter in net.named_parameters():
            if name.endswith(("gamma", "beta")) or parameter.numel() == 1:
                parameter.uniform_(0.2, 1.5)
    return net


@pytest.mark.parametrize("frames", [10, 164, 4000])
def test_fused_forward_equals_the_autograd_forward(model, frames):
    x = torch.randn(2, 2, frames)
    with torch.no_grad():
        fast = model(x)
    slow = model(x)
    assert slow.requires_grad
    torch.testing.assert_close(fast, slow.detach(), rtol=1e-5, atol=1e-5)


def test_each_fused_block_equals_its_modules(model):
    x = torch.randn(3, CONFIG.B, 37)
    for block in model.repeats[0]:
        with torch.no_grad():
            reference = x + block.net(x)
            torch.testing.assert_close(block.fused_forward(x), reference, rtol=1e-5, atol=1e-5)


def test_gradients_flow_through_the_trainable_suffix(model):
    x = torch.randn(1, 2, 400)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    last = model.repeats[-1]
    for parameter in last.parameters():
        parameter.requires_grad_(True)
    model(x).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in last.parameters())
    for parameter in model.parameters():
        parameter.requires_grad_(True)
        parameter.grad = None


def test_global_moments_are_accurate_for_long_inputs():
    x = torch.randn(2, 64, 200_000) * 2 + 1  # mean^2/var like a gLN input after PReLU
    with torch.no_grad():
        mean, var = global_moments(x)
    exact = x.double()
    torch.testing.assert_close(mean.flatten().double(), exact.mean(dim=(1, 2)), rtol=1e-6, atol=0)
    torch.testing.assert_close(var.flatten().double(), exact.var(dim=(1, 2), unbiased=False), rtol=1e-5, atol=0)


def _plain_overlap_add(net: ConvTasNet, mix: np.ndarray, segment: int) -> np.ndarray:
    """Segments weighted by triangles, summed, then divided by the summed weights (demucs' apply_model); each stem
    gets its share of the mean back (demucs gives each all of it)."""
    wav = torch.from_numpy(mix)
    ref = wav.mean(0)
    normalised = (wav - ref.mean()) / ref.std()
    length = wav.shape[-1]
    out = torch.zeros(len(net.sources), 2, length)
    total = torch.zeros(length)
    half = segment // 2
    weight = torch.cat([torch.arange(1, half + 1), torch.arange(segment - half, 0, -1)]).float()
    weight = weight / weight.max()
    with torch.no_grad():
        for offset in range(0, length, int(0.75 * segment)):
            chunk = normalised[:, offset : offset + segment]
            result = net(chunk[None])[0]
            out[..., offset : offset + chunk.shape[-1]] += weight[: chunk.shape[-1]] * result
            total[offset : offset + chunk.shape[-1]] += weight[: chunk.shape[-1]]
    return (out / total * ref.std() + ref.mean() / len(net.sources)).numpy()


def test_streamed_separation_equals_summing_then_dividing(model):
    mix = np.random.default_rng(0).standard_normal((2, 3123)).astype(np.float32) * 0.2 + 0.01
    stems = separate_array(model, mix, SeparationOptions(segment=0.1))
    np.testing.assert_allclose(stems, _plain_overlap_add(model, mix, 800), atol=1e-5)

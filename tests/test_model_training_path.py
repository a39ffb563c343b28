"""The training path's depthwise convolution equals nn.Conv1d in values, gradients and adaptation updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ugosa_cli.adaptation import AdaptationSettings, Adapter
from ugosa_cli.models.convtasnet import ConvTasNet, ModelConfig, _DilatedDepthwise

SMALL = ModelConfig(N=16, L=8, B=12, H=24, P=3, X=4, R=3, samplerate=8000, segment=8000)


def close(actual: torch.Tensor, expected: torch.Tensor) -> bool:
    """Equal within float32 rounding, relative to the tensor's scale."""
    return bool((actual - expected).abs().max() <= 1e-5 * (1 + expected.abs().max()))


def reference_conv(x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
    padding = (weight.shape[-1] - 1) * dilation // 2
    return F.conv1d(x, weight, padding=padding, dilation=dilation, groups=x.shape[1])


def backward_nodes(output: torch.Tensor) -> set[str]:
    """Names of the autograd nodes that produced ``output``."""
    names, pending, seen = set(), [output.grad_fn], set()
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        pending.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("dilation", [1, 2, 16, 40, 64])
def test_depthwise_matches_conv1d_values_and_gradients(kernel: int, dilation: int) -> None:
    torch.manual_seed(dilation)
    x = torch.randn(2, 6, 50, requires_grad=True)  # dilations 64 and 40 (kernel 5) reach past both ends
    weight = torch.randn(6, 1, kernel, requires_grad=True)
    upstream = torch.randn(2, 6, 50)
    out = _DilatedDepthwise.apply(x, weight, dilation)
    expected = reference_conv(x, weight, dilation)
    assert close(out, expected)
    for grad, expected_grad in zip(
        torch.autograd.grad(out, [x, weight], upstream), torch.autograd.grad(expected, [x, weight], upstream)
    ):
        assert close(grad, expected_grad)


@pytest.mark.parametrize("needs", ["input", "weight"])
def test_depthwise_gradient_of_input_only_or_weight_only(needs: str) -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 5, 30, requires_grad=needs == "input")
    weight = torch.randn(5, 1, 3, requires_grad=needs == "weight")
    wanted = x if needs == "input" else weight
    (grad,) = torch.autograd.grad(_DilatedDepthwise.apply(x, weight, 4).square().sum(), [wanted])
    (expected,) = torch.autograd.grad(reference_conv(x, weight, 4).square().sum(), [wanted])
    assert close(grad, expected)


def test_model_outputs_and_all_parameter_gradients_match_conv1d() -> None:
    torch.manual_seed(0)
    model = ConvTasNet(SMALL)
    mix = torch.randn(2, 2, 800)
    results = []
    for fast in (True, False):
        model.use_fast_backward(fast)
        model.zero_grad(set_to_none=True)
        out = model(mix)
        assert ("_DilatedDepthwiseBackward" in backward_nodes(out)) == fast
        out.square().mean().backward()
        results.append((out.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}))
    (fast_out, fast_grads), (ref_out, ref_grads) = results
    assert close(fast_out, ref_out)
    assert fast_grads.keys() == ref_grads.keys()
    for name, grad in ref_grads.items():
        assert grad.abs().max() > 0, name
        assert close(fast_grads[name], grad), name


def test_inference_does_not_change_with_the_training_path() -> None:
    torch.manual_seed(0)
    model = ConvTasNet(SMALL).eval()
    mix = torch.randn(1, 2, 900)
    with torch.no_grad():
        model.use_fast_backward(False)
        reference = model(mix)
        model.use_fast_backward(True)
        assert torch.equal(model(mix), reference)


@pytest.mark.parametrize("strategy", ["P-L1:D", "P-L4:D"])
def test_one_adaptation_step_gives_the_reference_parameters(strategy: str) -> None:
    torch.manual_seed(0)
    base = ConvTasNet(SMALL)
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((2, 4000)).astype(np.float32)
    activations = np.ones((4, 4000), dtype=np.float32)
    activations[1, :2000] = 0
    activations[3, 2000:] = 0
    # Ranger (the paper's): its first steps follow the gradient itself, where Adam's first step takes only its sign.
    settings = AdaptationSettings(strategy=strategy, epochs=1, window=0.5, hop=0.5, max_windows=1, lr=1e-3,
                                  optimizer="ranger")
    adapted = []
    for fast in (True, False):
        model = ConvTasNet(SMALL)
        model.load_state_dict(base.state_dict())
        model.use_fast_backward(fast)
        result = Adapter(model, mix, activations, settings).run()
        assert result.steps == 1
        adapted.append(model.state_dict())
    fast_state, reference_state = adapted
    changed = [name for name in base.state_dict() if not torch.equal(reference_state[name], base.state_dict()[name])]
    assert changed
    for name, tensor in reference_state.items():
        assert torch.allclose(fast_state[name], tensor, rtol=1e-5, atol=1e-6), name

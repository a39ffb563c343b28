"""Cut points of BS-RoFormer and Mel-Band RoFormer, in the UGOSA paper's style: ``P-L1:D`` trains the most,
``P-L5:D`` the least.

The STFT and the band split (the encoder) always stay frozen, as the paper keeps its encoder frozen. With
``D`` layers (12 in viperx's BS-RoFormer, 6 in KimberleyJensen's Mel-Band RoFormer), the cuts mirror the
paper's on ConvTasNet's repeats, the mask estimators playing the decoder:

- ``L1``: layers 2-D, the final norm and the mask estimators;
- ``L2``: the last half of the layers (``round(D / 2)``) and the mask estimators;
- ``L3``: the last quarter of the layers (``round(D / 4)``, at least one) and the mask estimators;
- ``L4``: the mask estimators (and BS-RoFormer's final norm);
- ``L5``: the output layer of each band's mask estimator (the Linear before its GLU), the counterpart of
  ConvTasNet's decoder: a linear map to the masks.

A model with a target instrument trains only that instrument's mask estimator. The mask estimators hold a
large share of the weights (half of viperx's BS-RoFormer, 88 % of KimberleyJensen's Mel-Band RoFormer), but
little of the work; their output layers about a tenth of the weights. The frozen prefix (STFT, band split, the
frozen layers) runs once per window; the state it hands on is the band features at the cut, the spectrum the
masks apply to, the mixture and the skip connections' sums. With ``L5`` the frozen layers of the mask
estimators run in each step, without gradients.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from ugosa_cli.errors import SettingError
from ugosa_cli.models.family import PrefixState, SeparationModel
from ugosa_cli.models.roformer import MaskEstimator, Roformer, RoformerConfig, RoformerState

CUTS = (1, 2, 3, 4, 5)
MASKS_CUT = 4  # the mask estimators
OUTPUT_CUT = 5  # the mask estimators' output layers
# A training step costs about this many forwards of the trained part (forward, then the backward's input
# and weight gradients); recomputing activations adds one more forward of it.
BACKWARD_FACTOR = 3.0


def _as_roformer(model: SeparationModel) -> Roformer:
    assert isinstance(model, Roformer)
    return model


def _check_cut(cut: int) -> None:
    if cut not in CUTS:
        raise SettingError("strategy", None, f"L{cut}: RoFormers have cut points L1 to L5")


def first_trained_layer(depth: int, cut: int) -> int:
    """The first layer a cut trains (``depth`` for L4 and L5, which train no layer)."""
    if cut == 1:
        return min(1, depth - 1)
    if cut == 2:
        return depth - max(1, round(depth / 2))
    if cut == 3:
        return depth - max(1, round(depth / 4))
    return depth


def trained_heads(model: Roformer) -> list[int]:
    """The mask estimators the model uses (and training trains): the target's alone, or all."""
    return [model.target_index] if model.target_index is not None else list(range(model.config.num_stems))


def output_layers(model: Roformer, head: int) -> list[nn.Module]:
    """The output Linear of each band's mask estimator of stem ``head`` (the layer before the GLU)."""
    estimator = model.mask_estimators[head]
    bands = cast(MaskEstimator, estimator).to_freqs
    return [cast(nn.Sequential, cast(nn.Sequential, band)[0])[-1] for band in bands]


class RoformerSplit:
    """A RoFormer cut at one point: ``suffix(prefix(x), length)`` equals ``model(x)``."""

    def __init__(self, model: Roformer, cut: int, *, recompute: bool = False) -> None:
        _check_cut(cut)
        self.model = model
        self.cut = cut
        self.recompute = recompute
        self.first = first_trained_layer(model.config.depth, cut)

    @torch.no_grad()
    def prefix(self, mix: Tensor) -> PrefixState:
        model = self.model
        state = model.run_layers(model.encode(mix), self.first)
        return (state.features, torch.view_as_real(state.spectrum), state.mix, *state.stored)

    def suffix(self, state: PrefixState, length: int) -> Tensor:
        model = self.model
        features, spectrum, mix, *stored = state
        current = RoformerState(features, torch.view_as_complex(spectrum.contiguous()), mix, self.first, list(stored))
        current = model.run_layers(current, model.config.depth, recompute=self.recompute)
        stems = model.complete(model.decode(current, model.target_index), mix)
        return stems[..., :length]

    def activation_bytes(self, batch: int, length: int) -> int:
        """About a dozen width-sized float32 values per token and trained transformer, the attention maps,
        and the mask estimators' hidden activations."""
        config = self.model.config
        frames = length // config.stft_hop_length + 1
        bands = len(self.model.band_split.widths)
        tokens = frames * bands
        per_layer = 0
        for depth, sequence in ((config.time_transformer_depth, frames), (config.freq_transformer_depth, bands),
                                (config.linear_transformer_depth, config.dim_head)):
            per_layer += depth * tokens * (12 * config.dim + config.heads * sequence)
        trained = (config.depth - self.first) * per_layer
        hidden = tokens * config.dim * config.mlp_expansion_factor
        heads = len(trained_heads(self.model)) * (hidden if self.cut == OUTPUT_CUT else 3 * hidden)
        return 4 * batch * (trained + heads)


def layer_macs(config: RoformerConfig, frames: int, bands: int) -> tuple[float, float]:
    """Multiply-accumulates of one layer's part across time (with the linear attention) and across the bands."""
    inner = config.heads * config.dim_head
    tokens = frames * bands
    projections = tokens * (4 * config.dim * inner + 8 * config.dim * config.dim + config.dim * config.heads)

    def unit(sequence: int) -> float:
        return projections + 2 * tokens * sequence * inner

    linear = config.linear_transformer_depth * (projections + 2 * tokens * inner * config.dim_head)
    return linear + config.time_transformer_depth * unit(frames), config.freq_transformer_depth * unit(bands)


def stage_macs(model: Roformer, length: int) -> tuple[float, list[tuple[float, float]], float, float]:
    """(band split, per layer (across time, across bands), one mask estimator, its output layers)
    multiply-accumulates for an input of ``length`` samples."""
    config = model.config
    frames = length // config.stft_hop_length + 1
    widths = model.band_split.widths
    hidden = config.dim * config.mlp_expansion_factor
    linears = config.mask_estimator_depth + (1 if config.mel else 0)
    split = frames * sum(widths) * config.dim
    last_input = config.dim if linears == 1 else hidden
    output = frames * sum(last_input * 2 * width for width in widths)
    head = output + (frames * len(widths) * (config.dim * hidden + (linears - 2) * hidden * hidden)
                     if linears > 1 else 0)
    layers = [layer_macs(config, frames, len(widths))] * config.depth
    return split, layers, head, output


class RoformerFamily:
    """The cut points of :class:`Roformer` (see the module docstring)."""

    name = "RoFormer"
    frozen = "STFT and band split"

    def cuts(self, model: SeparationModel) -> tuple[int, ...]:
        return CUTS

    def trainable_parts(self, model: SeparationModel, cut: int) -> list[tuple[str, nn.Module]]:
        net = _as_roformer(model)
        _check_cut(cut)
        depth = net.config.depth
        parts: list[tuple[str, nn.Module]] = []
        for index in range(first_trained_layer(depth, cut), depth):
            parts.append((f"layer {index + 1}", net.layers[index]))
        if cut != OUTPUT_CUT and hasattr(net, "final_norm"):
            parts.append(("final norm", net.final_norm))
        for head in trained_heads(net):
            if cut == OUTPUT_CUT:
                parts += [(f"mask estimator {head + 1} band {band + 1} output layer", layer)
                          for band, layer in enumerate(output_layers(net, head))]
            else:
                parts.append((f"mask estimator {head + 1}", net.mask_estimators[head]))
        return parts

    def describe(self, model: SeparationModel, cut: int) -> str:
        net = _as_roformer(model)
        _check_cut(cut)
        depth = net.config.depth
        first = first_trained_layer(depth, cut)
        words = []
        if first < depth:
            words.append(f"layer {depth}" if first + 1 == depth else f"layers {first + 1}-{depth}")
        if cut != OUTPUT_CUT and hasattr(net, "final_norm"):
            words.append("final norm")
        heads = trained_heads(net)
        if net.settings.target is not None and net.config.num_stems > 1:
            masks = f"the {net.settings.target} mask estimator"
        else:
            masks = "mask estimator" if len(heads) == 1 else "mask estimators"
        if cut == OUTPUT_CUT:
            masks = "the output layers of " + (masks if masks.startswith("the ") else f"the {masks}")
        words.append(masks)
        return " + ".join(words)

    def split(self, model: SeparationModel, cut: int) -> RoformerSplit:
        return RoformerSplit(_as_roformer(model), cut)

    def forward_flops(self, model: SeparationModel, samples: int) -> float:
        """Two operations per multiply-accumulate of :func:`stage_macs`."""
        net = _as_roformer(model)
        split, layers, head, _ = stage_macs(net, samples)
        return 2.0 * (split + sum(time + bands for time, bands in layers) + head * len(trained_heads(net)))

    def relative_cost(self, model: SeparationModel, cut: int, *, recompute: bool) -> tuple[float, float]:
        """From multiply-accumulates of one chunk: band split, each layer's parts, the mask estimators used."""
        net = _as_roformer(model)
        _check_cut(cut)
        split, layers, head, output = stage_macs(net, net.segment_length)
        count = len(trained_heads(net))
        total = split + sum(time + bands for time, bands in layers) + head * count
        first = first_trained_layer(net.config.depth, cut)
        in_suffix = sum(time + bands for time, bands in layers[first:]) + head * count
        trained = output * count if cut == OUTPUT_CUT else in_suffix  # the rest of the suffix runs frozen
        step = BACKWARD_FACTOR * trained + (in_suffix - trained) + (trained if recompute else 0)
        return (total - in_suffix) / total, step / total

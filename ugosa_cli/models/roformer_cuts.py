"""Cut points of BS-RoFormer and Mel-Band RoFormer, in the UGOSA paper's style: ``P-L1:D`` trains the most,
``P-L5:D`` the least.

The STFT and the band split (the encoder) always stay frozen, as the paper keeps its encoder frozen. With
``D`` layers (12 in viperx's BS-RoFormer, 6 in KimberleyJensen's Mel-Band RoFormer), the cuts mirror the
paper's on ConvTasNet's repeats, the mask estimators playing the decoder:

- ``L1``: layers 2-D, the final norm and the mask estimators;
- ``L2``: the last half of the layers (``round(D / 2)``) and the mask estimators;
- ``L3``: the last quarter of the layers (``round(D / 4)``, at least one) and the mask estimators;
- ``L4``: the last layer's transformer across the bands and the mask estimators;
- ``L5``: the mask estimators alone.

A model with a target instrument trains only that instrument's mask estimator. The mask estimators hold a
large share of the weights (about half in viperx's BS-RoFormer), unlike ConvTasNet's decoder, but little of
the work. The frozen prefix (STFT, band split, the frozen layers) runs once per window; the state it hands on
is the band features at the cut, the spectrum the masks apply to, the mixture and the skip connections' sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ugosa_cli.errors import SettingError
from ugosa_cli.models.family import PrefixState, SeparationModel
from ugosa_cli.models.roformer import Roformer, RoformerConfig, RoformerState

CUTS = (1, 2, 3, 4, 5)
BAND_TRANSFORMER_CUT = 4  # the last layer's transformer across the bands
DECODER_CUT = 5  # the mask estimators alone
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
    """The first layer a cut trains whole (``depth`` for L4 and L5, which train no whole layer)."""
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


@dataclass(frozen=True)
class _Layout:
    """What a packed prefix state holds besides its tensors (the same for every window)."""

    layers_done: int
    timed: bool
    stored: int


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
        if self.cut == BAND_TRANSFORMER_CUT:
            state = model.across_time(model.run_layers(model.encode(mix), model.config.depth - 1))
        else:
            state = model.run_layers(model.encode(mix), self.first)
        self._layout = _Layout(state.layers_done, state.timed, len(state.stored))
        return (state.features, torch.view_as_real(state.spectrum), state.mix, *state.stored)

    def suffix(self, state: PrefixState, length: int) -> Tensor:
        model = self.model
        features, spectrum, mix, *stored = state
        layout = self._layout
        current = RoformerState(features, torch.view_as_complex(spectrum.contiguous()), mix, layout.layers_done,
                                list(stored), layout.timed)
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
        layers = config.depth - self.first
        per_layer = 0
        for depth, sequence in ((config.time_transformer_depth, frames), (config.freq_transformer_depth, bands),
                                (config.linear_transformer_depth, config.dim_head)):
            per_layer += depth * tokens * (12 * config.dim + config.heads * sequence)
        trained = layers * per_layer + (config.freq_transformer_depth * tokens * (12 * config.dim + config.heads * bands)
                                        if self.cut == BAND_TRANSFORMER_CUT else 0)
        heads = len(trained_heads(self.model)) * tokens * config.dim * config.mlp_expansion_factor * 3
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


def stage_macs(model: Roformer, length: int) -> tuple[float, list[tuple[float, float]], float]:
    """(band split, per layer (across time, across bands), one mask estimator) multiply-accumulates for an
    input of ``length`` samples."""
    config = model.config
    frames = length // config.stft_hop_length + 1
    widths = model.band_split.widths
    hidden = config.dim * config.mlp_expansion_factor
    linears = config.mask_estimator_depth + (1 if config.mel else 0)
    split = frames * sum(widths) * config.dim
    if linears == 1:
        head = frames * sum(config.dim * 2 * width for width in widths)
    else:
        head = frames * sum(config.dim * hidden + (linears - 2) * hidden * hidden + hidden * 2 * width
                            for width in widths)
    layers = [layer_macs(config, frames, len(widths))] * config.depth
    return split, layers, head


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
        if cut == BAND_TRANSFORMER_CUT:
            parts.append((f"layer {depth} transformer across the bands", net.layers[depth - 1][-1]))  # type: ignore[index]
        if cut != DECODER_CUT and hasattr(net, "final_norm"):
            parts.append(("final norm", net.final_norm))
        for head in trained_heads(net):
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
        if cut == BAND_TRANSFORMER_CUT:
            words.append(f"layer {depth}'s transformer across the bands")
        if cut != DECODER_CUT and hasattr(net, "final_norm"):
            words.append("final norm")
        heads = trained_heads(net)
        if net.settings.target is not None and net.config.num_stems > 1:
            words.append(f"the {net.settings.target} mask estimator")
        else:
            words.append("mask estimator" if len(heads) == 1 else "mask estimators")
        return " + ".join(words)

    def split(self, model: SeparationModel, cut: int) -> RoformerSplit:
        return RoformerSplit(_as_roformer(model), cut)

    def relative_cost(self, model: SeparationModel, cut: int, *, recompute: bool) -> tuple[float, float]:
        """From multiply-accumulates of one chunk: band split, each layer's parts, the mask estimators used."""
        net = _as_roformer(model)
        _check_cut(cut)
        split, layers, head = stage_macs(net, net.segment_length)
        heads = head * len(trained_heads(net))
        total = split + sum(time + bands for time, bands in layers) + heads
        first = first_trained_layer(net.config.depth, cut)
        trained = sum(time + bands for time, bands in layers[first:]) + heads
        if cut == BAND_TRANSFORMER_CUT:
            trained += layers[-1][1]
        step = BACKWARD_FACTOR * trained + (trained if recompute else 0)
        return (total - trained) / total, step / total

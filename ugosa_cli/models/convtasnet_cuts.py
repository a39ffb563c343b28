"""The UGOSA paper's cut points on ConvTasNet, and the frozen-prefix / trainable-suffix split at each.

For a network with R repeats of X blocks (tasnet: R=4, X=10), cut ``Lk`` for ``k < R`` trains repeats
``k+1..R``, the mask conv and the decoder; ``L4`` trains the last block's depthwise-separable conv, the mask
conv and the decoder; ``L5`` the decoder alone. The encoder is always frozen. With the real ``tasnet``
these reproduce the paper's #TP (8.2M, 5.6M, 2.9M, 0.4M, 0.01M).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from ugosa_cli.errors import SettingError
from ugosa_cli.models.convtasnet import ConvTasNet
from ugosa_cli.models.family import PrefixState, SeparationModel

SEPARABLE_CUT = 4  # the last block's depthwise-separable conv, mask conv and decoder
DECODER_CUT = 5  # the decoder alone
# A training step costs about this many forwards of the trained part (forward, then the backward's input
# and weight gradients); recomputing activations adds one more forward of it.
BACKWARD_FACTOR = 3.0


def _as_convtasnet(model: SeparationModel) -> ConvTasNet:
    assert isinstance(model, ConvTasNet)
    return model


def first_trained_repeat(model: ConvTasNet, cut: int) -> int | None:
    """Index of the first trained repeat for repeat cuts (L1..L3 on the 4-repeat tasnet), else None."""
    if cut in (SEPARABLE_CUT, DECODER_CUT):
        return None
    repeats = model.config.R
    if not 1 <= cut < repeats:
        cuts = [f"L{k}" for k in range(1, SEPARABLE_CUT) if k < repeats] + ["L4", "L5"]
        raise SettingError(
            "strategy", None,
            f"L{cut} needs a model with more than {cut} repeats; this model has R={repeats} "
            f"(use {', '.join(cuts[:-1])} or {cuts[-1]})",
        )
    return cut


class ConvTasNetSplit:
    """ConvTasNet cut at one point; the cached state is the encoder output and the features entering the
    first trained layer: for a repeat cut, the input of that repeat; for L4, the input of the last block
    (its frozen 1x1 conv and norm are cheap and recomputed); for L5, the output of the last repeat (the
    frozen mask conv is recomputed)."""

    def __init__(self, model: ConvTasNet, cut: int, *, recompute: bool = False) -> None:
        self.model = model
        self.cut = cut
        self.recompute = recompute
        first = first_trained_repeat(model, cut)
        self.frozen_repeats = first if first is not None else model.config.R

    @property
    def trained_blocks(self) -> int:
        """Temporal blocks whose activations the backward pass needs."""
        if self.cut == SEPARABLE_CUT:
            return 1
        if self.cut == DECODER_CUT:
            return 0
        return (self.model.config.R - self.frozen_repeats) * self.model.config.X

    def activation_bytes(self, batch: int, length: int) -> int:
        """About six hidden-width float32 maps per trained block."""
        config = self.model.config
        frames = length // (config.L // 2)
        return 6 * 4 * self.trained_blocks * batch * frames * config.H

    @torch.no_grad()
    def prefix(self, mix: Tensor) -> PrefixState:
        model = self.model
        mixture_w = model.encode(mix)
        features = model.bottleneck(mixture_w)
        if self.cut == SEPARABLE_CUT:
            features = model.repeats[: model.config.R - 1](features)
            features = cast(nn.Sequential, model.repeats[-1])[: model.config.X - 1](features)
        else:
            features = model.repeats[: self.frozen_repeats](features)
        return mixture_w, features

    def suffix(self, state: PrefixState, length: int) -> Tensor:
        model = self.model
        mixture_w, features = state
        if self.cut == SEPARABLE_CUT:
            block = model.block(-1, -1)
            with torch.no_grad():
                hidden = block.hidden(features)
            features = features + block.separable(hidden)
        elif self.cut != DECODER_CUT:
            for block in (model.block(r, x) for r in range(self.frozen_repeats, model.config.R)
                          for x in range(model.config.X)):
                    if self.recompute and torch.is_grad_enabled():
                        features = torch.utils.checkpoint.checkpoint(block, features, use_reentrant=False)
                    else:
                        features = block(features)
        return model.decode_from(mixture_w, features, length)


class ConvTasNetFamily:
    """The cut points of :class:`ConvTasNet` (see the module docstring)."""

    name = "ConvTasNet"
    frozen = "encoder"

    def cuts(self, model: SeparationModel) -> tuple[int, ...]:
        repeats = _as_convtasnet(model).config.R
        return tuple(k for k in range(1, SEPARABLE_CUT) if k < repeats) + (SEPARABLE_CUT, DECODER_CUT)

    def trainable_parts(self, model: SeparationModel, cut: int) -> list[tuple[str, nn.Module]]:
        net = _as_convtasnet(model)
        config = net.config
        first = first_trained_repeat(net, cut)
        parts: list[tuple[str, nn.Module]] = []
        if first is not None:
            parts += [(f"repeat {r + 1}", net.repeats[r]) for r in range(first, config.R)]
        elif cut == SEPARABLE_CUT:
            parts.append((f"repeat {config.R} block {config.X} depthwise-separable conv", net.block(-1, -1).separable))
        if cut != DECODER_CUT:
            parts.append(("mask conv", net.mask_conv))
        parts.append(("decoder", net.decoder))
        return parts

    def describe(self, model: SeparationModel, cut: int) -> str:
        net = _as_convtasnet(model)
        first = first_trained_repeat(net, cut)
        rest = [name for name, _ in self.trainable_parts(net, cut) if not name.startswith("repeat ") or "block" in name]
        if first is not None:
            last = net.config.R
            span = f"repeat {last}" if first + 1 == last else f"repeats {first + 1}-{last}"
            rest = [span] + rest
        return " + ".join(rest)

    def split(self, model: SeparationModel, cut: int) -> ConvTasNetSplit:
        return ConvTasNetSplit(_as_convtasnet(model), cut)

    def relative_cost(self, model: SeparationModel, cut: int, *, recompute: bool) -> tuple[float, float]:
        """From multiply-accumulates per encoder frame: encoder, bottleneck, R x X blocks, mask conv, decoder."""
        encoder, block, head, blocks = _macs_per_frame(_as_convtasnet(model))
        total = encoder + blocks * block + head
        split = ConvTasNetSplit(_as_convtasnet(model), cut)
        frozen_blocks = blocks - split.trained_blocks
        prefix = encoder + frozen_blocks * block
        trained = split.trained_blocks * block + head
        step = BACKWARD_FACTOR * trained + (trained if recompute else 0)
        return prefix / total, step / total

    def forward_flops(self, model: SeparationModel, samples: int) -> float:
        """Two operations per multiply-accumulate, per encoder frame (hop L / 2)."""
        net = _as_convtasnet(model)
        encoder, block, head, blocks = _macs_per_frame(net)
        frames = samples // (net.config.L // 2) + 1
        return 2.0 * frames * (encoder + blocks * block + head)


def _macs_per_frame(net: ConvTasNet) -> tuple[int, int, int, int]:
    """Multiply-accumulates per encoder frame: encoder and bottleneck, one block, mask conv and decoder; and the
    number of blocks."""
    config = net.config
    sources = len(config.sources)
    encoder = config.audio_channels * config.N * config.L + config.N * config.B
    block = 2 * config.B * config.H + config.H * config.P
    head = config.B * config.N * sources + sources * config.N * config.audio_channels * config.L
    return encoder, block, head, config.R * config.X

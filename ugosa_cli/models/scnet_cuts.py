"""Cut points of SCNet, in the UGOSA paper's style: ``P-L1:D`` trains the most, ``P-L5:D`` the least.

The STFT and the encoder always stay frozen, as the paper keeps its encoder frozen. With ``N`` dual-path
layers (6 in the released SCNet and SCNet-large) and a decoder of ``len(dims) - 1`` blocks (3), the cuts
follow HT-Demucs' (whose transformer the dual-path layers correspond to):

- ``L1``: dual-path layers 2-N and the decoder;
- ``L2``: the last half of the dual-path layers (``round(N / 2)``) and the decoder;
- ``L3``: the decoder;
- ``L4``: the last two decoder blocks;
- ``L5``: the last decoder block (the one that makes the spectrograms).

The frozen prefix (STFT, encoder, the frozen layers) runs once per window; the state it hands on is the
features at the cut, the encoder's skips the trained blocks still take, and the mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ugosa_cli.errors import SettingError
from ugosa_cli.models.family import PrefixState, SeparationModel
from ugosa_cli.models.scnet import SCNet, SCNetConfig, SCNetState, band_edges

CUTS = (1, 2, 3, 4, 5)
DECODER_CUT = 3  # the first cut with every dual-path layer frozen
BACKWARD_FACTOR = 3.0  # a step: the trained part's forward and its backward, about twice a forward


def _as_scnet(model: SeparationModel) -> SCNet:
    assert isinstance(model, SCNet)
    return model


def _check_cut(cut: int) -> None:
    if cut not in CUTS:
        raise SettingError("strategy", None, f"L{cut}: SCNet has cut points L1 to L5")


def first_trained_layer(layers: int, cut: int) -> int:
    """The first dual-path layer a cut trains (``layers`` for the decoder cuts)."""
    if cut == 1:
        return max(0, min(1, layers - 1))
    if cut == 2:
        return max(0, layers - max(1, round(layers / 2)))
    return layers


def decoder_blocks_trained(blocks: int, cut: int) -> int:
    """Decoder blocks a cut trains, counted from the output."""
    return {4: min(2, blocks), 5: 1}.get(cut, blocks)


@dataclass(frozen=True)
class _Layout:
    """What a packed prefix state holds besides its tensors (the same for every window of one length)."""

    lengths: tuple[tuple[int, ...], ...]
    sizes: tuple[tuple[int, ...], ...]
    separated: int
    decoded: int
    padding: int


class SCNetSplit:
    """SCNet cut at one point: ``suffix(prefix(x), length)`` equals ``model(x)``."""

    def __init__(self, model: SCNet, cut: int, *, recompute: bool = False) -> None:
        _check_cut(cut)
        self.model = model
        self.cut = cut
        self.recompute = recompute
        self.first = first_trained_layer(model.config.num_dplayer, cut)
        self.frozen_blocks = len(model.decoder) - decoder_blocks_trained(len(model.decoder), cut)
        self._layout: _Layout | None = None

    @torch.no_grad()
    def prefix(self, mix: Tensor) -> PrefixState:
        model = self.model
        state = model.separate(model.encode(mix), self.first)
        state = model.decode_layers(state, self.frozen_blocks)
        layout = _Layout(tuple(map(tuple, state.lengths)), tuple(map(tuple, state.sizes)), state.separated,
                         state.decoded, state.padding)
        if self._layout is not None and self._layout != layout:
            raise ValueError("every window of one adaptation must have the same length")
        self._layout = layout
        return (state.features, state.mix, *state.skips)

    def suffix(self, state: PrefixState, length: int) -> Tensor:
        model = self.model
        assert self._layout is not None, "run prefix() first"
        layout = self._layout
        features, mix, *skips = state
        current = SCNetState(features, list(skips), [list(x) for x in layout.lengths], [list(x) for x in layout.sizes],
                             layout.separated, layout.decoded, layout.padding, mix)
        current = model.separate(current, model.config.num_dplayer, recompute=self.recompute)
        current = model.decode_layers(current, len(model.decoder), recompute=self.recompute)
        stems = model.output(current)
        if model.target_index is not None:
            stems = stems[:, model.target_index : model.target_index + 1]
        return model.complete(stems, mix)[..., :length]

    def activation_bytes(self, batch: int, length: int) -> int:
        """About a dozen float32 values per position and channel of each trained stage (the LSTMs keep their
        gates)."""
        stages = stage_macs(self.model.config, length)
        elements = sum(size for size, _ in stages.layers[self.first :])
        elements += sum(size for size, _ in stages.decoder[self.frozen_blocks :])
        return 4 * batch * 12 * int(elements)


@dataclass
class StageCost:
    """Per stage (size of its activations in values, multiply-accumulates)."""

    encoder: float
    layers: list[tuple[float, float]]
    decoder: list[tuple[float, float]]


def _frames(config: SCNetConfig, length: int) -> int:
    hop = config.hop_size
    padded = length + hop - length % hop
    if padded // hop % 2 == 0:
        padded += hop
    return padded // hop + 1


def stage_macs(config: SCNetConfig, length: int) -> StageCost:
    """Activation sizes and multiply-accumulates of SCNet's stages for an input of ``length`` samples."""
    frames = _frames(config, length)
    freqs = config.nfft // 2 + 1
    encoder = 0.0
    decoder: list[tuple[float, float]] = []
    for level in range(len(config.dims) - 1):
        c_in, c_out = config.dims[level], config.dims[level + 1]
        back = c_in if level else c_in * len(config.sources)
        hidden = int(c_out / config.compress)
        narrowed = []
        for (start, end), stride, kernel, depth in zip(band_edges(freqs, config.band_SR), config.band_stride,
                                                       config.band_kernel, config.conv_depths):
            size = math.ceil((end - start) / stride)
            narrowed.append(size)
            encoder += c_in * c_out * kernel * size * frames
            encoder += depth * size * frames * (c_out * 2 * hidden * config.conv_kernel + hidden * config.conv_kernel
                                               + hidden * c_out)
        positions = sum(narrowed) * frames
        encoder += 9 * c_out * c_out * positions
        up = sum(c_out * back * kernel * size * frames for size, kernel in zip(narrowed, config.band_kernel))
        decoder.insert(0, (positions * c_out * 2 + freqs * frames * back, 9 * 4 * c_out * c_out * positions + up))
        freqs = sum(narrowed)
    layers: list[tuple[float, float]] = []
    for index in range(config.num_dplayer):
        channels = config.dims[-1] * (2 if index % 2 else 1)
        steps = freqs * (frames // 2 + 1 if index % 2 else frames)
        hidden = channels * config.expand
        lstm = 2 * 2 * steps * 4 * hidden * (channels + hidden) + 2 * steps * 2 * hidden * channels
        layers.append((float(steps * (channels + 4 * hidden)), float(lstm)))
    return StageCost(encoder, layers, decoder)


class SCNetFamily:
    """The cut points of :class:`SCNet` (see the module docstring)."""

    name = "SCNet"
    frozen = "STFT and encoder"

    def cuts(self, model: SeparationModel) -> tuple[int, ...]:
        return CUTS

    def trainable_parts(self, model: SeparationModel, cut: int) -> list[tuple[str, nn.Module]]:
        net = _as_scnet(model)
        _check_cut(cut)
        layers = net.config.num_dplayer
        parts: list[tuple[str, nn.Module]] = [
            (f"dual-path layer {index + 1}", net.separation_net.dp_modules[index])
            for index in range(first_trained_layer(layers, cut), layers)
        ]
        blocks = len(net.decoder)
        for index in range(blocks - decoder_blocks_trained(blocks, cut), blocks):
            parts.append((f"decoder block {index + 1}", net.decoder[index]))
        return parts

    def describe(self, model: SeparationModel, cut: int) -> str:
        net = _as_scnet(model)
        _check_cut(cut)
        layers = net.config.num_dplayer
        first = first_trained_layer(layers, cut)
        words = []
        if first < layers:
            words.append(f"dual-path layer {layers}" if first + 1 == layers else f"dual-path layers {first + 1}-{layers}")
        blocks = len(net.decoder)
        trained = decoder_blocks_trained(blocks, cut)
        if trained == blocks:
            words.append("decoder")
        elif trained == 1:
            words.append("the last decoder block")
        else:
            words.append(f"the last {trained} decoder blocks")
        return " + ".join(words)

    def split(self, model: SeparationModel, cut: int) -> SCNetSplit:
        return SCNetSplit(_as_scnet(model), cut)

    def forward_flops(self, model: SeparationModel, samples: int) -> float:
        """Two operations per multiply-accumulate of :func:`stage_macs`."""
        stages = stage_macs(_as_scnet(model).config, samples)
        return 2.0 * (stages.encoder + sum(macs for _, macs in stages.layers) + sum(macs for _, macs in stages.decoder))

    def relative_cost(self, model: SeparationModel, cut: int, *, recompute: bool) -> tuple[float, float]:
        """From multiply-accumulates of one chunk: encoder, each dual-path layer, each decoder block."""
        net = _as_scnet(model)
        _check_cut(cut)
        stages = stage_macs(net.config, net.segment_length)
        first = first_trained_layer(net.config.num_dplayer, cut)
        frozen_blocks = len(net.decoder) - decoder_blocks_trained(len(net.decoder), cut)
        total = stages.encoder + sum(macs for _, macs in stages.layers) + sum(macs for _, macs in stages.decoder)
        trained = sum(macs for _, macs in stages.layers[first:]) + sum(macs for _, macs in stages.decoder[frozen_blocks:])
        step = BACKWARD_FACTOR * trained + (trained if recompute else 0)
        return (total - trained) / total, step / total

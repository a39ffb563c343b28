"""Cut points of HT-Demucs, in the UGOSA paper's style: ``P-L1:D`` trains the most, ``P-L5:D`` the least.

Both encoders (spectral and temporal) always stay frozen, as the paper keeps its encoder frozen. For the
released ``htdemucs`` (41,984,456 parameters; 5 transformer layers per branch, 4 decoder layers per
branch), the cuts span what the paper's do (75 % of the weights down to the decoder alone):

- ``L1``: transformer layers 2-5 of both branches, the channel down-samplers, both decoders (about 77 %);
- ``L2``: transformer layers 4-5, the down-samplers, both decoders (about 47 %);
- ``L3``: the down-samplers and both decoders (about 17 %);
- ``L4``: the last two decoder layers of each branch;
- ``L5``: the last decoder layer of each branch (the layers that make the waveforms and spectrograms).

For other sizes the transformer cuts keep the proportions: ``L1`` trains all but the first layer, ``L2``
the last ``round(2/5 * layers)`` (at least one). The frozen prefix (both encoders and their U-Net skips, the
transformer's frozen layers) runs once per window; the state it hands on is the encoders' skips, their
statistics and the features (or transformer tokens) at the cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from ugosa_cli.errors import SettingError
from ugosa_cli.models.family import PrefixState, SeparationModel, counted_flops
from ugosa_cli.models.htdemucs import HTDemucs, HTDemucsState

CUTS = (1, 2, 3, 4, 5)
DECODER_CUT = 3  # the first cut with the whole transformer frozen
# What adapting costs, in forwards of the whole model on one window (the unit of planning.fit_to_budget),
# measured on the released htdemucs (BENCHMARKS.md, "HT-Demucs adaptation cost": CPU seconds, 2 threads,
# one 7.8 s window; a forward took 6.8 CPU s). HT-Demucs' time does not follow its weights: the transformer
# holds 75 % of them, but the decoders, working at full resolution, take most of a step's time.
# The frozen prefix's share of a forward (torch's FLOP counter on that window):
PREFIX_SHARE = {1: 0.23, 2: 0.48, 3: 0.73, 4: 0.87, 5: 0.94}
# One step on the cached prefix (suffix forward, loss, backward, optimiser) with the trained part's
# activations recomputed in the backward pass; keeping them instead saves about one forward of that part.
STEP_COST_RECOMPUTED = {1: 6.0, 2: 4.8, 3: 3.3, 4: 1.7, 5: 0.9}


def _as_htdemucs(model: SeparationModel) -> HTDemucs:
    assert isinstance(model, HTDemucs)
    return model


def first_trained_layer(model: HTDemucs, cut: int) -> int:
    """The first trained transformer layer of a transformer cut (L1, L2); the layer count for the others."""
    layers = model.config.t_layers
    if cut == 1:
        return min(1, layers - 1)
    if cut == 2:
        return layers - max(1, round(2 * layers / 5))
    return layers


def decoder_layers_trained(model: HTDemucs, cut: int) -> int:
    """Decoder layers of each branch a cut trains, counted from the output."""
    depth = model.config.depth
    return {4: min(2, depth), 5: 1}.get(cut, depth)


@dataclass(frozen=True)
class _Layout:
    """What a packed prefix state holds besides its tensors (the same for every window of one length)."""

    length: int
    padded_length: int
    wave_lengths: tuple[int, ...]
    skips: int  # skips per branch still to be consumed
    decoded: int
    transformed: bool


def _pack(state: HTDemucsState, *extra: Tensor) -> tuple[_Layout, PrefixState]:
    tensors = (*extra, state.spec, state.wave, *state.spec_skips, *state.wave_skips, state.spec_mean, state.spec_std,
               state.wave_mean, state.wave_std)
    layout = _Layout(state.length, state.padded_length, state.wave_lengths, len(state.spec_skips), state.decoded,
                     state.transformed)
    return layout, tensors


def _unpack(layout: _Layout, tensors: PrefixState, extra: int) -> tuple[tuple[Tensor, ...], HTDemucsState]:
    head, rest = tensors[:extra], tensors[extra:]
    spec, wave, rest = rest[0], rest[1], rest[2:]
    n = layout.skips
    spec_skips, wave_skips, (spec_mean, spec_std, wave_mean, wave_std) = rest[:n], rest[n : 2 * n], rest[2 * n :]
    state = HTDemucsState(
        length=layout.length, padded_length=layout.padded_length, spec=spec, wave=wave, spec_skips=tuple(spec_skips),
        wave_skips=tuple(wave_skips), wave_lengths=layout.wave_lengths, spec_mean=spec_mean, spec_std=spec_std,
        wave_mean=wave_mean, wave_std=wave_std, transformed=layout.transformed, decoded=layout.decoded,
    )
    return tuple(head), state


class HTDemucsSplit:
    """HT-Demucs cut at one point: ``suffix(prefix(x), length)`` equals ``model(x)`` (eval mode: dropout off,
    a shorter window padded to the segment as in separation)."""

    def __init__(self, model: HTDemucs, cut: int, *, recompute: bool = False) -> None:
        if cut not in CUTS:
            raise SettingError("strategy", None, f"L{cut}: HT-Demucs has cut points L1 to L5")
        self.model = model
        self.cut = cut
        self.recompute = recompute
        self.first_layer = first_trained_layer(model, cut)
        self.frozen_decoder_layers = model.config.depth - decoder_layers_trained(model, cut)
        self._layout: _Layout | None = None

    @property
    def tokens(self) -> bool:
        """Whether the state carries transformer tokens: the cut is inside the transformer, or right after it
        (L3 trains the channel down-samplers, which turn the tokens back into feature maps)."""
        return self.cut <= DECODER_CUT

    @torch.no_grad()
    def prefix(self, mix: Tensor) -> PrefixState:
        model = self.model
        state = model.encode(mix, pad_to_segment=True)
        if self.tokens:
            spec, wave = model.transformer_tokens(state)
            spec, wave = model.crosstransformer.run_layers(spec, wave, 0, self.first_layer)
            layout, packed = _pack(state, spec, wave)
        else:
            state = model.decode_layers(model.transform(state), self.frozen_decoder_layers)
            layout, packed = _pack(state)
        if self._layout is not None and self._layout != layout:
            raise ValueError("every window of one adaptation must have the same length")
        self._layout = layout
        return packed

    def suffix(self, state: PrefixState, length: int) -> Tensor:
        model = self.model
        assert self._layout is not None, "run prefix() first"
        extra = 2 if self.tokens else 0
        (tokens, decoded) = _unpack(self._layout, state, extra)
        if self.tokens:
            spec, wave = model.crosstransformer.run_layers(
                tokens[0], tokens[1], self.first_layer, model.config.t_layers, recompute=self.recompute
            )
            decoded = model.from_tokens(decoded, spec, wave)
        for _ in range(model.config.depth - decoded.decoded - 1):  # all but the last, which decode() runs
            if self.recompute and torch.is_grad_enabled():
                decoded = cast(HTDemucsState, torch.utils.checkpoint.checkpoint(
                    model.decode_layers, decoded, 1, use_reentrant=False))
            else:
                decoded = model.decode_layers(decoded, 1)
        stems = model.decode(decoded)
        return stems[..., :length]

    def activation_bytes(self, batch: int, length: int) -> int:
        """About 30 float32 values per spectral-branch activation of the trained decoder layers, and the
        attention maps and feed-forward activations of the trained transformer layers (measured scale:
        BENCHMARKS.md, "HT-Demucs adaptation")."""
        config = self.model.config
        segment = max(length, config.segment_samples)
        frames = -(-segment // config.hop_length)
        freqs = config.nfft // 2
        per_layer = 0
        for index in range(decoder_layers_trained(self.model, self.cut)):  # from the output inwards
            channels = config.channels * 2**index
            per_layer += channels * (freqs // 4**index) * frames + channels * (segment // 4**index)
        tokens = (freqs // 4**config.depth) * frames + -(-segment // 4**config.depth)
        width = config.transformer_channels
        layers = config.t_layers - self.first_layer
        transformer = layers * (tokens * width * 12 + config.t_heads * tokens * tokens)
        return 4 * batch * (30 * per_layer + transformer)


class HTDemucsFamily:
    """The cut points of :class:`HTDemucs` (see the module docstring)."""

    name = "HT-Demucs"
    frozen = "both encoders"

    def cuts(self, model: SeparationModel) -> tuple[int, ...]:
        return CUTS

    def trainable_parts(self, model: SeparationModel, cut: int) -> list[tuple[str, nn.Module]]:
        net = _as_htdemucs(model)
        if cut not in CUTS:
            raise SettingError("strategy", None, f"L{cut}: HT-Demucs has cut points L1 to L5")
        config = net.config
        parts: list[tuple[str, nn.Module]] = []
        first = first_trained_layer(net, cut)
        for index in range(first, config.t_layers):
            parts.append((f"transformer layer {index + 1}", net.crosstransformer.layers[index]))
            parts.append((f"transformer layer {index + 1} (temporal)", net.crosstransformer.layers_t[index]))
        if cut <= DECODER_CUT and config.bottom_channels:
            parts += [("channel down-sampler", net.channel_downsampler),
                      ("channel down-sampler (temporal)", net.channel_downsampler_t)]
        trained = decoder_layers_trained(net, cut)
        for index in range(config.depth - trained, config.depth):
            parts.append((f"spectral decoder layer {index + 1}", net.decoder[index]))
            parts.append((f"temporal decoder layer {index + 1}", net.tdecoder[index]))
        return parts

    def describe(self, model: SeparationModel, cut: int) -> str:
        net = _as_htdemucs(model)
        config = net.config
        words = []
        first = first_trained_layer(net, cut)
        if first < config.t_layers:
            span = f"{first + 1}" if first + 1 == config.t_layers else f"{first + 1}-{config.t_layers}"
            words.append(f"transformer layers {span}")
        if cut <= DECODER_CUT and config.bottom_channels:
            words.append("channel down-samplers")
        trained = decoder_layers_trained(net, cut)
        if trained == config.depth:
            words.append("both decoders")
        elif trained == 1:
            words.append("the last decoder layer of each branch")
        else:
            words.append(f"the last {trained} decoder layers of each branch")
        return " + ".join(words)

    def split(self, model: SeparationModel, cut: int) -> HTDemucsSplit:
        return HTDemucsSplit(_as_htdemucs(model), cut)

    def forward_flops(self, model: SeparationModel, samples: int) -> float:
        """Counted on the meta device; the network pads a shorter input to its segment and splits a longer one
        into segments, so the count is per segment."""
        net = _as_htdemucs(model)
        segment = net.segment_length
        return counted_flops(net, segment) * max(1.0, samples / segment)

    def relative_cost(self, model: SeparationModel, cut: int, *, recompute: bool) -> tuple[float, float]:
        """The costs measured on the released configuration (:data:`STEP_COST_RECOMPUTED`), used for every
        size: the layers' proportions, which set the ratios, are the same."""
        _as_htdemucs(model)
        if cut not in CUTS:
            raise SettingError("strategy", None, f"L{cut}: HT-Demucs has cut points L1 to L5")
        prefix = PREFIX_SHARE[cut]
        step = STEP_COST_RECOMPUTED[cut] - (0.0 if recompute else 1.0 - prefix)
        return prefix, step

"""BS-RoFormer and Mel-Band RoFormer, with the parameter names of msst 0.1.0, so the state dicts that
Music-Source-Separation-Training (MSST) and its users publish load with ``load_state_dict(strict=True)``.

Structure (``b`` batch, ``c`` audio channels, ``F`` frequency bins, ``T`` frames, ``d`` = ``dim``):

* STFT of each channel (Hann window, centred), real and imaginary parts side by side:
  (b, c, time) -> (b, T, F * c * 2), the channels interleaved within each bin.
* Band split (the encoder): the spectrum is cut into bands, each an RMSNorm and a Linear to ``d``:
  -> (b, T, bands, d). BS-RoFormer's bands are consecutive runs of bins (``freqs_per_bands``);
  Mel-Band RoFormer's are the bins under each of ``num_bands`` Slaney mel filters, which overlap.
* ``depth`` layers, each a transformer over time within each band, then one over the bands within each
  frame (optionally preceded by a linear-attention transformer over all tokens): pre-norm attention
  (RMSNorm, rotary position embeddings, optional per-head sigmoid output gates) and a GELU feed-forward,
  both residual. BS-RoFormer ends with an RMSNorm (``final_norm``).
* One mask estimator per stem (the decoder): per band an MLP (Tanh between layers) and a GLU give the
  complex mask of its bins; Mel-Band RoFormer averages the masks of bins in several bands. The masked
  spectrum (its DC bin zeroed with ``zero_dc``) is inverted by iSTFT to the input's length.

Code versions differ in optional parts, read from the state dict (:class:`RoformerLayout`): the attention
output gates (``to_gates``), a norm at the end of each transformer, BS-RoFormer's final norm and stored
rotary frequencies. Differences from msst on purpose: the output always has the input's length (msst's
Mel-Band RoFormer returns whole hops unless ``match_input_audio_length``; for the chunk sizes msst's
configurations use the two agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from ugosa_cli.models.mel import mel_band_membership
from ugosa_cli.models.msst_common import MSSTNetwork, MSSTSettings

BS_ROFORMER = "bs_roformer"
MEL_BAND_ROFORMER = "mel_band_roformer"
ROTARY_THETA = 10000.0
LINEAR_ATTENTION_SCALE = 8.0


@dataclass(frozen=True)
class RoformerLayout:
    """The optional parts a state dict holds (they differ between code versions)."""

    gates: bool = True  # per-head output gates of the attention (``to_gates``)
    transformer_norm: bool = False  # an RMSNorm at the end of each transformer (``...layers.N.norm``)
    final_norm: bool = True  # BS-RoFormer's RMSNorm before the mask estimators
    rotary_freqs: bool = True  # the rotary embeddings' frequencies are stored (``rotary_embed.freqs``)


def current_layout(kind: str) -> RoformerLayout:
    """The optional parts msst 0.1.0's code builds: gates everywhere; BS-RoFormer one norm at the end of the
    network, Mel-Band RoFormer one at the end of each transformer."""
    mel = kind == MEL_BAND_ROFORMER
    return RoformerLayout(gates=True, transformer_norm=mel, final_norm=not mel, rotary_freqs=True)


@dataclass(frozen=True)
class RoformerConfig:
    """The constructor arguments of msst's ``BSRoformer`` / ``MelBandRoformer`` that shape the network
    (names as in the YAML ``model:`` section), checked by :mod:`ugosa_cli.msst`."""

    kind: str  # BS_ROFORMER or MEL_BAND_ROFORMER
    dim: int
    depth: int
    stereo: bool = False
    num_stems: int = 1
    time_transformer_depth: int = 2
    freq_transformer_depth: int = 2
    linear_transformer_depth: int = 0
    freqs_per_bands: tuple[int, ...] = ()  # BS-RoFormer
    num_bands: int = 60  # Mel-Band RoFormer
    sample_rate: int = 44100  # Mel-Band RoFormer: for its mel filters
    dim_head: int = 64
    heads: int = 8
    attn_dropout: float = 0.0
    ff_dropout: float = 0.0
    stft_n_fft: int = 2048
    stft_hop_length: int = 512
    stft_win_length: int = 2048
    stft_normalized: bool = False
    zero_dc: bool = True
    mask_estimator_depth: int = 2
    mlp_expansion_factor: int = 4
    skip_connection: bool = False
    layout: RoformerLayout | None = None  # None: msst 0.1.0's (:func:`current_layout`)

    def __post_init__(self) -> None:
        if self.layout is None:
            object.__setattr__(self, "layout", current_layout(self.kind))

    @property
    def parts(self) -> RoformerLayout:
        assert self.layout is not None
        return self.layout

    @property
    def mel(self) -> bool:
        return self.kind == MEL_BAND_ROFORMER

    @property
    def audio_channels(self) -> int:
        return 2 if self.stereo else 1

    @property
    def freqs(self) -> int:
        return self.stft_n_fft // 2 + 1


class RMSNorm(nn.Module):
    """``x / |x| * sqrt(dim) * gamma`` over the last axis."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.root = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) * (self.root * self.gamma)


class RotaryEmbedding(nn.Module):
    """Rotary position embeddings over the sequence axis of (..., sequence, dim_head) queries and keys:
    feature pairs (2i, 2i+1) rotated by ``position * theta**(-2i / dim_head)``. The frequencies are a buffer
    (msst stores them as a frozen parameter: the same state-dict key, never trained)."""

    freqs: Tensor

    def __init__(self, dim_head: int, stored: bool = True) -> None:
        super().__init__()
        freqs = [1.0 / ROTARY_THETA ** (2 * index / dim_head) for index in range(dim_head // 2)]
        self.register_buffer("freqs", torch.tensor(freqs, dtype=torch.float32), persistent=stored)

    def forward(self, x: Tensor) -> Tensor:
        positions = torch.arange(x.shape[-2], device=x.device, dtype=self.freqs.dtype)
        angles = (positions[:, None] * self.freqs).repeat_interleave(2, dim=-1)
        rotated = angles.shape[-1]
        head, rest = x[..., :rotated], x[..., rotated:]
        pairs = head.unflatten(-1, (-1, 2))
        turned = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        out = head * angles.cos() + turned * angles.sin()
        return torch.cat((out, rest), dim=-1) if rest.shape[-1] else out


class Attention(nn.Module):
    """Pre-norm multi-head self-attention with rotary embeddings and, in newer code, per-head output gates."""

    def __init__(self, config: RoformerConfig, rotary: RotaryEmbedding) -> None:
        super().__init__()
        inner = config.heads * config.dim_head
        self.heads = config.heads
        self.dropout = config.attn_dropout
        self.norm = RMSNorm(config.dim)
        self.to_qkv = nn.Linear(config.dim, inner * 3, bias=False)
        if config.parts.gates:
            self.to_gates = nn.Linear(config.dim, config.heads)
        self.to_out = nn.Sequential(nn.Linear(inner, config.dim, bias=False), nn.Dropout(config.attn_dropout))
        self.rotary_embed = rotary

    def forward(self, x: Tensor) -> Tensor:
        """(batch, sequence, dim) -> (batch, sequence, dim), the residual not added."""
        x = self.norm(x)
        q, k, v = self.to_qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        q, k = self.rotary_embed(q), self.rotary_embed(k)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        if hasattr(self, "to_gates"):
            out = out * self.to_gates(x).transpose(1, 2)[..., None].sigmoid()
        return cast(Tensor, self.to_out(out.transpose(1, 2).flatten(2)))


class LinearAttention(nn.Module):
    """Cross-covariance attention (attention between feature channels, over all positions), L2-normalised
    queries and keys with a learned temperature per head."""

    def __init__(self, config: RoformerConfig) -> None:
        super().__init__()
        inner = config.heads * config.dim_head
        self.heads = config.heads
        self.dropout = config.attn_dropout
        self.norm = RMSNorm(config.dim)
        self.to_qkv = nn.Sequential(nn.Linear(config.dim, inner * 3, bias=False))
        self.temperature = nn.Parameter(torch.ones(config.heads, 1, 1))
        self.to_out = nn.Sequential(nn.Identity(), nn.Linear(inner, config.dim, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        q, k, v = self.to_qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 4, 1)  # (b, h, d, n)
        q = F.normalize(q, dim=-1) * self.temperature.exp()
        k = F.normalize(k, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                             scale=LINEAR_ATTENTION_SCALE)
        return cast(Tensor, self.to_out(out.permute(0, 3, 1, 2).flatten(2)))


class FeedForward(nn.Module):
    def __init__(self, dim: int, dropout: float, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(RMSNorm(dim), nn.Linear(dim, dim * mult), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(dim * mult, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, self.net(x))


class Transformer(nn.Module):
    """``depth`` residual (attention, feed-forward) pairs over (batch, sequence, dim), then an optional norm."""

    def __init__(self, config: RoformerConfig, depth: int, rotary: RotaryEmbedding | None) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(depth):
            attention = LinearAttention(config) if rotary is None else Attention(config, rotary)
            self.layers.append(nn.ModuleList([attention, FeedForward(config.dim, config.ff_dropout)]))
        self.norm = RMSNorm(config.dim) if config.parts.transformer_norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        for attention, feed_forward in cast(Sequence[nn.ModuleList], self.layers):
            x = attention(x) + x
            x = feed_forward(x) + x
        return cast(Tensor, self.norm(x))


class BandSplit(nn.Module):
    """(b, T, sum(widths)) -> (b, T, bands, dim): each band's slice normalised and projected."""

    def __init__(self, dim: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.widths = list(widths)
        self.to_features = nn.ModuleList(nn.Sequential(RMSNorm(width), nn.Linear(width, dim)) for width in widths)

    def forward(self, x: Tensor) -> Tensor:
        bands = x.split(self.widths, dim=-1)
        return torch.stack([project(band) for project, band in zip(self.to_features, bands)], dim=-2)


def _mlp(dim_in: int, dim_out: int, hidden: int, linears: int) -> nn.Sequential:
    """``linears`` Linear layers with Tanh between them."""
    sizes = [dim_in] + [hidden] * (linears - 1) + [dim_out]
    layers: list[nn.Module] = []
    for index, (size_in, size_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if index:
            layers.append(nn.Tanh())
        layers.append(nn.Linear(size_in, size_out))
    return nn.Sequential(*layers)


class MaskEstimator(nn.Module):
    """(b, T, bands, dim) -> (b, T, sum(widths)): per band an MLP to twice its width, then a GLU."""

    def __init__(self, dim: int, widths: Sequence[int], linears: int, expansion: int) -> None:
        super().__init__()
        self.to_freqs = nn.ModuleList(
            nn.Sequential(_mlp(dim, width * 2, dim * expansion, linears), nn.GLU(dim=-1)) for width in widths
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([head(band) for head, band in zip(self.to_freqs, x.unbind(dim=-2))], dim=-1)


@dataclass
class RoformerState:
    """A RoFormer between its stages: the band features (b, T, bands, d) after ``layers_done`` layers, the
    complex spectrum (b, F * c, T), the mixture (b, c, time) and the layers' outputs the skip connections add."""

    features: Tensor
    spectrum: Tensor
    mix: Tensor
    layers_done: int
    stored: list[Tensor]


class Roformer(MSSTNetwork):
    """BS-RoFormer or Mel-Band RoFormer (``config.kind``), see the module docstring.

    Stages: :meth:`encode` (STFT and band split), :meth:`run_layers` (the next transformer layers),
    :meth:`decode` (final norm, mask estimators, iSTFT); ``stems(mix) == decode(run_layers(encode(mix)))``.
    """

    freq_indices: Tensor
    bands_per_freq: Tensor
    window: Tensor

    def __init__(self, config: RoformerConfig, settings: MSSTSettings) -> None:
        super().__init__(settings, config.num_stems)
        self.config = config
        channels = config.audio_channels
        time_rotary = RotaryEmbedding(config.dim_head, config.parts.rotary_freqs)
        freq_rotary = RotaryEmbedding(config.dim_head, config.parts.rotary_freqs)
        self.layers = nn.ModuleList()
        for _ in range(config.depth):
            stage: list[nn.Module] = []
            if config.linear_transformer_depth > 0:
                stage.append(Transformer(config, config.linear_transformer_depth, None))
            stage.append(Transformer(config, config.time_transformer_depth, time_rotary))
            stage.append(Transformer(config, config.freq_transformer_depth, freq_rotary))
            self.layers.append(nn.ModuleList(stage))
        if not config.mel and config.parts.final_norm:
            self.final_norm = RMSNorm(config.dim)
        if config.mel:
            member = mel_band_membership(config.sample_rate, config.stft_n_fft, config.num_bands)
            bins = np.nonzero(member)[1]  # band by band, ascending within each
            indices = (bins[:, None] * channels + np.arange(channels)).reshape(-1)
            widths = [2 * channels * int(count) for count in member.sum(axis=1)]
            self.register_buffer("freq_indices", torch.as_tensor(indices, dtype=torch.long), persistent=False)
            per_freq = np.repeat(member.sum(axis=0), channels).astype(np.float32)
            self.register_buffer("bands_per_freq", torch.as_tensor(per_freq), persistent=False)
        else:
            widths = [2 * channels * count for count in config.freqs_per_bands]
        self.band_split = BandSplit(config.dim, widths)
        linears = config.mask_estimator_depth + (1 if config.mel else 0)
        self.mask_estimators = nn.ModuleList(
            MaskEstimator(config.dim, widths, linears, config.mlp_expansion_factor) for _ in range(config.num_stems)
        )
        # made on the CPU even while building on the meta device (where it would load torch's decompositions)
        self.register_buffer("window", torch.hann_window(config.stft_win_length, device="cpu"), persistent=False)

    @property
    def audio_channels(self) -> int:
        return self.config.audio_channels

    @property
    def min_length(self) -> int:
        """The reflect padding of the centred STFT needs more than half a window of input."""
        return self.config.stft_n_fft // 2 + 1

    def _stft_options(self) -> dict[str, object]:
        config = self.config
        return dict(n_fft=config.stft_n_fft, hop_length=config.stft_hop_length, win_length=config.stft_win_length,
                    window=self.window, normalized=config.stft_normalized)

    # ---- stages

    def encode(self, mix: Tensor) -> RoformerState:
        """(b, c, time) -> band features (b, T, bands, dim) before the first layer."""
        batch, channels, length = mix.shape
        spec = torch.stft(mix.reshape(-1, length), **self._stft_options(), return_complex=True)  # type: ignore[arg-type]
        spec = spec.unflatten(0, (batch, channels)).transpose(1, 2).flatten(1, 2)  # (b, F * c, T), channels inner
        picked = spec[:, self.freq_indices] if self.config.mel else spec
        x = torch.view_as_real(picked).transpose(1, 2).flatten(2)  # (b, T, bins * 2)
        return RoformerState(self.band_split(x), spec, mix, 0, [])

    def run_layers(self, state: RoformerState, stop: int, *, recompute: bool = False) -> RoformerState:
        """The layers from ``state.layers_done`` up to ``stop`` (exclusive); with ``recompute`` each layer's
        activations are recomputed in the backward pass."""
        x, stored = state.features, list(state.stored)
        for index in range(state.layers_done, stop):
            stage = self.layers[index]
            if recompute and torch.is_grad_enabled():
                x = cast(Tensor, torch.utils.checkpoint.checkpoint(self._layer, stage, x, stored, use_reentrant=False))
            else:
                x = self._layer(stage, x, stored)
            if self.config.skip_connection:
                stored.append(x)
        return RoformerState(x, state.spectrum, state.mix, max(stop, state.layers_done), stored)

    def _layer(self, stage: nn.Module, x: Tensor, stored: list[Tensor]) -> Tensor:
        """One layer on (b, T, bands, dim): the linear-attention transformer (if any), the skip connections' sum,
        the transformer across time within each band, then the one across the bands within each frame."""
        batch, frames, bands, dim = x.shape
        transformers = list(cast(nn.ModuleList, stage))
        if len(transformers) == 3:
            x = transformers.pop(0)(x.reshape(batch, frames * bands, dim)).reshape(batch, frames, bands, dim)
        for earlier in stored:
            x = x + earlier
        across_time, across_bands = transformers
        x = across_time(x.transpose(1, 2).reshape(batch * bands, frames, dim))
        x = x.reshape(batch, bands, frames, dim).transpose(1, 2).reshape(batch * frames, bands, dim)
        return cast(Tensor, across_bands(x)).reshape(batch, frames, bands, dim)

    def decode(self, state: RoformerState, only: int | None = None) -> Tensor:
        """Masks from the features after the last layer, applied and inverted: (b, stems, c, time)."""
        config = self.config
        x = state.features
        if hasattr(self, "final_norm"):
            x = self.final_norm(x)
        heads = list(self.mask_estimators) if only is None else [self.mask_estimators[only]]
        masks = torch.stack([head(x) for head in heads], dim=1)  # (b, n, T, bins * 2)
        masks = torch.view_as_complex(masks.unflatten(-1, (-1, 2)).transpose(2, 3).contiguous())  # (b, n, bins, T)
        spec = state.spectrum[:, None]
        if config.mel:
            index = self.freq_indices[None, None, :, None].expand_as(masks)
            summed = torch.zeros(*masks.shape[:2], *spec.shape[2:], dtype=masks.dtype, device=masks.device)
            masks = summed.scatter_add_(2, index, masks) / self.bands_per_freq.clamp(min=1e-8)[:, None]
        spec = spec * masks
        batch, stems, _, frames = spec.shape
        channels = config.audio_channels
        spec = spec.reshape(batch, stems, config.freqs, channels, frames).transpose(2, 3)
        spec = spec.reshape(batch * stems * channels, config.freqs, frames)
        if config.zero_dc:
            spec = torch.cat([torch.zeros_like(spec[:, :1]), spec[:, 1:]], dim=1)
        length = state.mix.shape[-1]
        audio = torch.istft(spec, **self._stft_options(), length=length)  # type: ignore[arg-type]
        return audio.reshape(batch, stems, channels, length)

    def stems(self, mix: Tensor, only: int | None = None) -> Tensor:
        return self.decode(self.run_layers(self.encode(mix), self.config.depth), only)

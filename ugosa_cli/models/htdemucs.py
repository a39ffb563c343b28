"""HT-Demucs, demucs v4's hybrid transformer separator, compatible with the released demucs 4.1.0 weights.

The module tree carries demucs 4.1.0's parameter names, so the state dicts of ``htdemucs``, the four
``htdemucs_ft`` models and ``htdemucs_6s`` load with ``load_state_dict(strict=True)``.

Structure (sizes of the released ``htdemucs``, one 7.8 s segment of 343,980 samples, batch ``B``):

* Spectral branch: STFT (n_fft 4096, hop 1024) of the mixture, real and imaginary parts as channels,
  (B, 4, 2048, 336) -> four encoder layers, each a strided conv over frequency (kernel 8, stride 4),
  a residual DConv over time within each frequency bin and a 1x1 conv + GLU -> (B, 384, 8, 336). A learned
  frequency embedding is added after the first layer.
* Temporal branch: the waveform (B, 2, 343980) -> four encoder layers (strided conv over time, DConv,
  1x1 conv + GLU) -> (B, 384, 1344).
* Channel up-samplers (1x1 convs 384 -> 512; absent in ``htdemucs_6s``), then the cross-transformer:
  5 layers over the 2688 spectral tokens (8 frequencies x 336 frames) and the 1344 temporal tokens,
  self-attention in layers 0, 2 and 4, attention of each branch to the other in layers 1 and 3. Then the
  channel down-samplers back to 384.
* Decoders mirror the encoders with U-Net skips; the spectral output is (B, sources * 4, 2048, 336),
  read as complex spectrograms and inverted by iSTFT, and added to the temporal output
  (B, sources * 2, 343980).

A mixture shorter than the training segment is padded with zeros to it in eval mode (as demucs does) and
the stems are trimmed back. Inference (no gradients) keeps the spectral tensors channels-last and folds
each DConv's second GroupNorm into the 1x1 conv before it; with gradients the plain operations run.
The stages are separate methods (:meth:`HTDemucs.encode`, :meth:`HTDemucs.transform`,
:meth:`HTDemucs.decode_layers`, :meth:`HTDemucs.decode`) so a frozen prefix can run once.

Differences from demucs on purpose: training mode does not overwrite the model's segment with the length
of the last training input, and an eval-mode input longer than the segment is refused with a clear error
(demucs fails on it with a shape error).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, cast

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from ugosa_cli.errors import InputError
from ugosa_cli.models.family import (
    SeparationModel,
    build_loaded,
    oversized,
    rate_and_segment_problem,
    state_mismatch,
)
from ugosa_cli.sources import check_source_names

FOUR_SOURCES = ("drums", "bass", "other", "vocals")
SIX_SOURCES = ("drums", "bass", "other", "vocals", "guitar", "piano")

# Fixed by the released configurations (the test-size configurations share them).
GROWTH = 2  # channels double at each layer
KERNEL_SIZE = 8  # encoder/decoder convolutions, over frequency or time
STRIDE = 4
DECODER_CONTEXT = 1  # the decoder's rewrite conv is 3 wide (3x3 in the spectral branch)
DCONV_DEPTH = 2  # residual DConv layers, dilations 1 and 2
DCONV_COMPRESS = 8  # DConv hidden channels = channels // 8
DCONV_INIT = 1e-3  # initial LayerScale of the DConv branches
FREQ_EMB_WEIGHT = 0.2
FREQ_EMB_SCALE = 10.0
T_LAYER_SCALE_INIT = 1e-4
T_MAX_PERIOD = 10000.0
NORM_EPS = 1e-5
SPEC_EPS = 1e-5  # added to the standard deviations of the branch inputs
# The sizes of the released ``htdemucs``: a configuration may ask for up to
# :data:`~ugosa_cli.models.family.MAX_SIZE_FACTOR` times each (its sample rate and segment are bounded on their own).
RELEASED_SIZES = {"channels": 48, "nfft": 4096, "depth": 4, "bottom_channels": 512, "t_layers": 5, "t_hidden_scale": 4.0}


@dataclass(frozen=True)
class HTDemucsConfig:
    """Hyper-parameters of an HT-Demucs that vary between the released models (names as in demucs).

    :func:`config_from_kwargs` accepts only the released configurations. Direct construction also
    accepts smaller sizes of the same structure (used by tests); they must keep every spectral layer a
    strided conv over at least ``KERNEL_SIZE`` frequencies.
    """

    sources: tuple[str, ...] = FOUR_SOURCES
    audio_channels: int = 2
    samplerate: int = 44100
    segment: Fraction = Fraction(39, 5)  # training segment, seconds
    channels: int = 48  # first layer's channels; the transformer sees channels * 2 ** (depth - 1)
    nfft: int = 4096
    depth: int = 4
    bottom_channels: int = 512  # transformer width through the 1x1 up/down-samplers; 0: none
    t_layers: int = 5
    t_heads: int = 8
    t_hidden_scale: float = 4.0
    t_dropout: float = 0.02  # training only

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", check_source_names(self.sources))
        for name in ("audio_channels", "samplerate", "channels", "nfft", "depth", "t_layers", "t_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"HT-Demucs config: {name} must be a positive integer, got {value!r}")
        if not isinstance(self.segment, (Fraction, int)) or isinstance(self.segment, bool) or self.segment <= 0:
            raise InputError(f"HT-Demucs config: segment must be a positive Fraction of seconds, got {self.segment!r}")
        object.__setattr__(self, "segment", Fraction(self.segment))
        if not isinstance(self.bottom_channels, int) or self.bottom_channels < 0:
            raise InputError(f"HT-Demucs config: bottom_channels must be 0 or positive, got {self.bottom_channels!r}")
        if not 0 <= self.t_dropout < 1:
            raise InputError(f"HT-Demucs config: t_dropout must be in [0, 1), got {self.t_dropout!r}")
        scale = self.t_hidden_scale
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not (math.isfinite(scale) and scale > 0):
            raise InputError(f"HT-Demucs config: t_hidden_scale must be a positive number, got {scale!r}")
        too_large = oversized({name: getattr(self, name) for name in RELEASED_SIZES}, RELEASED_SIZES)
        if too_large is not None:
            raise InputError(f"HT-Demucs config: {too_large}; the file is damaged or not an HT-Demucs ugosa can run: use another model file")
        if self.channels < DCONV_COMPRESS:
            raise InputError(f"HT-Demucs config: channels must be at least {DCONV_COMPRESS}, got {self.channels}")
        freqs = self.nfft // 2
        if self.nfft % 4 or freqs % STRIDE**self.depth or freqs // STRIDE ** (self.depth - 1) <= KERNEL_SIZE:
            raise InputError(
                f"HT-Demucs config: nfft {self.nfft} does not give {self.depth} spectral layers "
                f"(nfft / 2 must be a multiple of {STRIDE}**depth and stay above {KERNEL_SIZE} before the last layer)"
            )
        width = self.transformer_channels
        if width % self.t_heads or width % 4:
            raise InputError(
                f"HT-Demucs config: transformer width {width} must be a multiple of 4 and of t_heads={self.t_heads}"
            )
        problem = rate_and_segment_problem(self.samplerate, self.audio_channels, self.segment_samples, self.nfft)
        if problem is not None:
            raise InputError(f"HT-Demucs config: {problem}; the file is damaged or not an HT-Demucs ugosa can run: use another model file")

    @property
    def segment_samples(self) -> int:
        """The training segment in samples (343,980 for the released models)."""
        return int(self.segment * self.samplerate)

    @property
    def encoder_channels(self) -> int:
        """Channels at the bottom of both encoders."""
        return self.channels * GROWTH ** (self.depth - 1)

    @property
    def transformer_channels(self) -> int:
        return self.bottom_channels or self.encoder_channels

    @property
    def hop_length(self) -> int:
        return self.nfft // 4


# --------------------------------------------------------------------------------------------------------------
# The released configurations, checked against a demucs package's ``kwargs``.

# demucs 4.1.0's defaults for the HTDemucs arguments, used where a file leaves one out.
DEMUCS_DEFAULTS: dict[str, Any] = {
    "audio_channels": 2, "channels": 48, "channels_time": None, "growth": 2, "nfft": 4096, "wiener_iters": 0,
    "end_iters": 0, "wiener_residual": False, "cac": True, "depth": 4, "rewrite": True, "multi_freqs": None,
    "multi_freqs_depth": 3, "freq_emb": 0.2, "emb_scale": 10, "emb_smooth": True, "kernel_size": 8,
    "time_stride": 2, "stride": 4, "context": 1, "context_enc": 0, "norm_starts": 4, "norm_groups": 4,
    "dconv_mode": 1, "dconv_depth": 2, "dconv_comp": 8, "dconv_init": 1e-3, "bottom_channels": 0,
    "t_layers": 5, "t_emb": "sin", "t_hidden_scale": 4.0, "t_heads": 8, "t_dropout": 0.0,
    "t_max_positions": 10000, "t_norm_in": True, "t_norm_in_group": False, "t_group_norm": False,
    "t_norm_first": True, "t_norm_out": True, "t_max_period": 10000.0, "t_weight_decay": 0.0, "t_lr": None,
    "t_layer_scale": True, "t_gelu": True, "t_weight_pos_embed": 1.0, "t_sin_random_shift": 0,
    "t_cape_mean_normalize": True, "t_cape_augment": True, "t_cape_glob_loc_scale": [5000.0, 1.0, 1.4],
    "t_sparse_self_attn": False, "t_sparse_cross_attn": False, "t_mask_type": "diag", "t_mask_random_seed": 42,
    "t_sparse_attn_window": 500, "t_global_window": 100, "t_sparsity": 0.95, "t_auto_sparsity": False,
    "t_cross_first": False, "rescale": 0.1, "samplerate": 44100, "segment": 10, "use_train_segment": True,
}

# Settings that change the network's function: the released value is required.
RELEASED_VALUES: dict[str, Any] = {
    "audio_channels": 2, "samplerate": 44100, "segment": Fraction(39, 5), "channels": 48, "channels_time": None,
    "growth": 2, "nfft": 4096, "wiener_iters": 0, "end_iters": 0, "cac": True, "depth": 4, "rewrite": True,
    "freq_emb": 0.2, "emb_scale": 10, "kernel_size": 8, "stride": 4, "context": 1, "context_enc": 0,
    "norm_starts": 4, "dconv_mode": 3, "dconv_depth": 2, "dconv_comp": 8, "t_layers": 5, "t_emb": "sin",
    "t_hidden_scale": 4.0, "t_heads": 8, "t_norm_in": True, "t_group_norm": False, "t_norm_first": True,
    "t_norm_out": True, "t_max_period": 10000.0, "t_layer_scale": True, "t_gelu": True, "t_weight_pos_embed": 1.0,
    "t_sin_random_shift": 0, "t_sparse_self_attn": False, "t_sparse_cross_attn": False, "t_auto_sparsity": False,
    "t_cross_first": False, "use_train_segment": True,
}

# Settings without effect on a loaded released model (initialisation, optimiser, or a feature that the
# released values above switch off), with the type each must have.
INERT_TYPES: dict[str, tuple[type, ...]] = {
    "wiener_residual": (bool,),  # Wiener filtering only (cac is on)
    "multi_freqs_depth": (int,),  # multi_freqs only (empty)
    "emb_smooth": (bool,),  # initialisation
    "time_stride": (int,),  # time-only layers only (none at depth 4)
    "norm_groups": (int,),  # GroupNorm from layer norm_starts = depth only (none)
    "dconv_init": (int, float),  # initialisation
    "t_dropout": (int, float),  # training; kept in the config
    "t_max_positions": (int,),  # the "scaled" embedding only
    "t_weight_decay": (int, float),  # optimiser
    "t_lr": (int, float, type(None)),  # optimiser
    "t_norm_in_group": (bool,),  # only without t_norm_in
    "t_cape_mean_normalize": (bool,),  # the "cape" embedding only
    "t_cape_augment": (bool,),
    "t_cape_glob_loc_scale": (list, tuple),
    "t_mask_type": (str,),  # sparse attention only
    "t_mask_random_seed": (int,),
    "t_sparse_attn_window": (int,),
    "t_global_window": (int,),
    "t_sparsity": (int, float),
    "rescale": (int, float),  # initialisation
}

RELEASED_LAYOUTS = {FOUR_SOURCES: 512, SIX_SOURCES: 0}  # sources -> bottom_channels (htdemucs[_ft], htdemucs_6s)
SUPPORTED = "ugosa runs the released htdemucs, htdemucs_ft and htdemucs_6s configurations only"


def _same(value: Any, expected: Any) -> bool:
    """Equal and of the same kind (``True`` is not ``1``; ``10`` and ``10.0`` are the same number)."""
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return type(value) is type(expected) and value == expected
    if isinstance(expected, (int, float, Fraction)):
        return isinstance(value, (int, float, Fraction)) and not isinstance(value, bool) and value == expected
    return bool(value == expected)


def _as_segment(value: Any) -> Fraction | None:
    """Seconds as an exact Fraction: Fractions and ints as they are, floats through their shortest decimal."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (Fraction, int)):
        return Fraction(value)
    if isinstance(value, float) and math.isfinite(value):
        return Fraction(repr(value))
    return None


def config_from_kwargs(kwargs: Mapping[str, Any], origin: str = "HT-Demucs model") -> HTDemucsConfig:
    """The :class:`HTDemucsConfig` of a demucs package's ``kwargs``; ``InputError`` naming any other setting."""

    def refuse(name: str, value: Any, why: str) -> InputError:
        return InputError(f"{origin}: unsupported HT-Demucs setting {name}={value!r} ({why}; {SUPPORTED})")

    if "sources" not in kwargs:
        raise InputError(f"{origin}: the model's kwargs do not name its sources; {SUPPORTED}")
    known = set(DEMUCS_DEFAULTS) | {"sources"}
    for name in kwargs:
        if name not in known:
            raise InputError(f"{origin}: unknown HT-Demucs setting {name}={kwargs[name]!r}; {SUPPORTED}")
    values = {**DEMUCS_DEFAULTS, **kwargs}
    for name, expected in RELEASED_VALUES.items():
        value = values[name]
        if name == "segment":
            if _as_segment(value) != expected:
                raise refuse(name, value, f"the released models have segment={expected}")
        elif not _same(value, expected):
            raise refuse(name, value, f"the released models have {name}={expected!r}")
    multi_freqs = values["multi_freqs"]
    if multi_freqs not in (None, []) and multi_freqs != ():
        raise refuse("multi_freqs", multi_freqs, "frequency-band splitting is not implemented")
    for name, types in INERT_TYPES.items():
        value = values[name]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise refuse(name, value, f"expected {' or '.join(t.__name__ for t in types)}")
    dropout = values["t_dropout"]
    if not 0 <= dropout < 1:
        raise refuse("t_dropout", dropout, "a dropout probability is in [0, 1)")
    sources = values["sources"]
    if not isinstance(sources, (list, tuple)) or tuple(sources) not in RELEASED_LAYOUTS:
        raise refuse("sources", sources, f"the released models separate {list(FOUR_SOURCES)} or {list(SIX_SOURCES)}")
    bottom = values["bottom_channels"]
    if not _same(bottom, RELEASED_LAYOUTS[tuple(sources)]):
        raise refuse(
            "bottom_channels",
            bottom,
            f"the released {len(sources)}-source model has bottom_channels={RELEASED_LAYOUTS[tuple(sources)]}",
        )
    return HTDemucsConfig(sources=tuple(sources), bottom_channels=int(bottom), t_dropout=float(dropout))


# --------------------------------------------------------------------------------------------------------------
# Building blocks.


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch: channels in dim 1, or last with ``channel_last``."""

    def __init__(self, channels: int, init: float, channel_last: bool = False) -> None:
        super().__init__()
        self.channel_last = channel_last
        self.scale = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        return x * (self.scale if self.channel_last else self.scale[:, None])


class DConv(nn.Module):
    """Residual branches over time, each: dilated conv to channels // 8, GroupNorm, GELU, 1x1 conv to
    2 x channels, GroupNorm, GLU, LayerScale. ``layers.{i}.{0,1,3,4,6}`` hold the parameters (demucs' names).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = int(channels / DCONV_COMPRESS)
        self.layers = nn.ModuleList()
        for index in range(DCONV_DEPTH):
            dilation = 2**index
            self.layers.append(
                nn.Sequential(
                    nn.Conv1d(channels, hidden, 3, dilation=dilation, padding=dilation),
                    nn.GroupNorm(1, hidden, eps=NORM_EPS),
                    nn.GELU(),
                    nn.Conv1d(hidden, 2 * channels, 1),
                    nn.GroupNorm(1, 2 * channels, eps=NORM_EPS),
                    nn.GLU(1),
                    LayerScale(channels, DCONV_INIT),
                )
            )

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (batch, channels, time) -> same shape."""
        for index, layer in enumerate(self.layers):
            if torch.is_grad_enabled():
                x = x + layer(x)
            else:
                x = _fused_dconv_layer(cast(nn.Sequential, layer), x, 2**index, spectral=False)
        return x

    def over_frequencies(self, x: Tensor) -> Tensor:
        """The branches applied within each frequency bin of ``x`` (batch, channels, freqs, frames).

        Without gradients the result is channels-last (storage batch, freqs, frames, channels).
        """
        if not torch.is_grad_enabled():
            x = x.contiguous(memory_format=torch.channels_last)
            for index, layer in enumerate(self.layers):
                x = _fused_dconv_layer(cast(nn.Sequential, layer), x, 2**index, spectral=True)
            return x
        batch, channels, freqs, frames = x.shape
        rows = x.permute(0, 2, 1, 3).reshape(batch * freqs, channels, frames)
        for layer in self.layers:
            rows = rows + layer(rows)
        return rows.reshape(batch, freqs, channels, frames).permute(0, 2, 1, 3)


def _fused_dconv_layer(layer: nn.Sequential, x: Tensor, dilation: int, spectral: bool) -> Tensor:
    """One DConv residual branch for inference, with its second GroupNorm and LayerScale folded into products.

    ``x`` is (batch, C, time), or with ``spectral`` channels-last (batch, C, freqs, frames) whose every
    (batch item, frequency) is a row of its own. The second GroupNorm normalises ``z = W h + b`` over
    (2C, time) per row; its mean and variance follow from the mean and covariance of the narrow ``h``
    (C / 8 channels): ``var z = mean_c(W_c cov W_c') + var_c(W_c mean_h + b_c)``. So the normalised value
    and gate halves of the GLU come straight out of two products with an augmented ``h``
    (``[h / std_row, 1 / std_row, -mean_row / std_row, 1]``), and the LayerScale rides on the value half.
    """
    conv_in, norm_in = cast(nn.Conv1d, layer[0]), cast(nn.GroupNorm, layer[1])
    channels, hidden = x.shape[1], conv_in.weight.shape[0]
    if spectral:
        batch, _, freqs, frames = x.shape
        h4 = F.conv2d(x, conv_in.weight[:, :, None], conv_in.bias, padding=(0, dilation), dilation=(1, dilation))
        h = h4.permute(0, 2, 3, 1).reshape(batch * freqs, frames, hidden)  # (rows, time, hidden)
        h = torch.addcmul(norm_in.bias, F.layer_norm(h, (frames, hidden), eps=NORM_EPS), norm_in.weight)
        time_dim = 1
    else:
        frames = x.shape[-1]
        h = F.conv1d(x, conv_in.weight, conv_in.bias, padding=dilation, dilation=dilation)  # (rows, hidden, time)
        h = F.group_norm(h, 1, norm_in.weight, norm_in.bias, NORM_EPS)
        time_dim = 2
    h = F.gelu(h)

    weight_t, bias, gram, value_weight, gate_weight = _folded_constants(layer)
    mean_h = h.mean(dim=time_dim)  # (rows, hidden)
    covariance = _covariance(h - mean_h.unsqueeze(time_dim), time_dim)
    within = (covariance * gram).sum(dim=(1, 2))
    channel_means = torch.addmm(bias, mean_h, weight_t)  # (rows, 2C)
    z_mean = channel_means.mean(dim=1)
    inv_std = torch.rsqrt(within + channel_means.var(dim=1, unbiased=False) + NORM_EPS)  # (rows,)
    per_row = torch.stack([inv_std, -inv_std * z_mean, torch.ones_like(inv_std)], dim=1)  # (rows, 3)
    if spectral:
        rows = h.shape[0]
        augmented = torch.cat([h * inv_std[:, None, None], per_row[:, None, :].expand(rows, frames, 3)], dim=2)
        augmented = augmented.view(rows * frames, hidden + 3)
        value = augmented @ value_weight
        gate = (augmented @ gate_weight).sigmoid_()
        residual = x.permute(0, 2, 3, 1).reshape(rows * frames, channels)
        out = torch.addcmul(residual, value, gate, out=value)
        return out.view(batch, freqs, frames, channels).permute(0, 3, 1, 2)
    rows = h.shape[0]
    augmented = torch.cat([h * inv_std[:, None, None], per_row[:, :, None].expand(rows, 3, frames)], dim=1)
    value = torch.matmul(value_weight.T, augmented)
    gate = torch.matmul(gate_weight.T, augmented).sigmoid_()
    return torch.addcmul(x, value, gate, out=value)


def _folded_constants(layer: nn.Sequential) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The parameter-only tensors of :func:`_fused_dconv_layer`, cached on ``layer`` until a parameter changes.

    ``weight_t`` (hidden, 2C) and ``bias`` (2C,) of the 1x1 conv, ``gram = W'W / 2C`` (hidden, hidden), and
    the augmented weights (hidden + 3, C) of the GLU's value half (with the LayerScale) and gate half.
    """
    parameters = list(layer.parameters())
    # Inference tensors (parameters made under torch.inference_mode) have no version counter: no caching.
    key = None if any(p.is_inference() for p in parameters) else tuple((p.data_ptr(), p._version) for p in parameters)
    cached = layer.__dict__.get("_folded")
    if key is not None and cached is not None and cached[0] == key:
        return cached[1]
    conv_out, norm_out = cast(nn.Conv1d, layer[3]), cast(nn.GroupNorm, layer[4])
    layer_scale = cast(LayerScale, layer[6])
    with torch.no_grad():
        weight = conv_out.weight[:, :, 0]  # (2C, hidden)
        bias = cast(Tensor, conv_out.bias).clone()
        channels = weight.shape[0] // 2
        scale = torch.cat([layer_scale.scale, torch.ones_like(layer_scale.scale)])
        gain = norm_out.weight * scale  # (2C,)
        augmented = torch.cat(
            [(weight * gain[:, None]).T, (bias * gain)[None], gain[None], (norm_out.bias * scale)[None]]
        )
        constants = (
            weight.T.contiguous(),
            bias,
            weight.T @ weight / (2 * channels),
            augmented[:, :channels].contiguous(),
            augmented[:, channels:].contiguous(),
        )
    if key is not None:
        layer.__dict__["_folded"] = (key, constants)
    return constants


def _covariance(centred: Tensor, time_dim: int, chunk: int = 256) -> Tensor:
    """Covariance over time of ``centred`` (rows, hidden, time) or, with ``time_dim=1``, (rows, time, hidden).

    Products of ``chunk`` frames at a time in float32, their sums in float64 (float32 on MPS): one float32
    product over a whole 86,000-frame waveform layer is off by ~1e-4 relative, enough to show in the stems.
    """
    frames = centred.shape[time_dim]
    wide = torch.float32 if centred.device.type == "mps" else torch.float64  # MPS has no float64
    whole = frames // chunk * chunk
    pieces = [centred.narrow(time_dim, 0, whole), centred.narrow(time_dim, whole, frames - whole)]
    total = None
    for piece, size in zip(pieces, (chunk, frames - whole), strict=True):
        if piece.shape[time_dim] == 0:
            continue
        parts = piece.unflatten(time_dim, (-1, size))  # (rows, n, size, hidden) or (rows, hidden, n, size)
        if time_dim == 1:
            products = torch.matmul(parts.transpose(-1, -2), parts)
        else:
            parts = parts.transpose(1, 2)
            products = torch.matmul(parts, parts.transpose(-1, -2))
        summed = products.to(wide).sum(dim=1)
        total = summed if total is None else total + summed
    assert total is not None
    return (total / frames).to(centred.dtype)


class FreqEncoderLayer(nn.Module):
    """Strided conv over frequency (kernel 8, stride 4, padding 2), GELU, DConv, 1x1 conv + GLU.

    (batch, in, freqs, frames) -> (batch, out, freqs / 4, frames).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, (KERNEL_SIZE, 1), (STRIDE, 1), (KERNEL_SIZE // 4, 0))
        self.rewrite = nn.Conv2d(out_channels, 2 * out_channels, 1)
        self.dconv = DConv(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        y = F.gelu(self.conv(x))
        y = self.dconv.over_frequencies(y)
        return F.glu(self.rewrite(y), dim=1)


class TimeEncoderLayer(nn.Module):
    """Strided conv over time (kernel 8, stride 4, padding 2), GELU, DConv, 1x1 conv + GLU.

    (batch, in, time) -> (batch, out, ceil(time / 4)); the input is first zero-padded to a multiple of 4.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, KERNEL_SIZE, STRIDE, KERNEL_SIZE // 4)
        self.rewrite = nn.Conv1d(out_channels, 2 * out_channels, 1)
        self.dconv = DConv(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] % STRIDE:
            x = F.pad(x, (0, STRIDE - x.shape[-1] % STRIDE))
        y = F.gelu(self.conv(x))
        y = self.dconv(y)
        return F.glu(self.rewrite(y), dim=1)


class FreqDecoderLayer(nn.Module):
    """Skip added, 3x3 conv + GLU, DConv, transposed conv over frequency (kernel 8, stride 4), GELU
    except in the last layer. (batch, in, freqs, frames) -> (batch, out, freqs * 4, frames).
    """

    def __init__(self, in_channels: int, out_channels: int, last: bool) -> None:
        super().__init__()
        self.last = last
        width = 1 + 2 * DECODER_CONTEXT
        self.conv_tr = nn.ConvTranspose2d(in_channels, out_channels, (KERNEL_SIZE, 1), (STRIDE, 1))
        self.rewrite = nn.Conv2d(in_channels, 2 * in_channels, width, 1, DECODER_CONTEXT)
        self.dconv = DConv(in_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        y = F.glu(self.rewrite(x + skip), dim=1)
        y = self.dconv.over_frequencies(y)
        pad = KERNEL_SIZE // 4
        z = self.conv_tr(y)[:, :, pad:-pad]
        return z if self.last else F.gelu(z)


class TimeDecoderLayer(nn.Module):
    """Skip added, 3-wide conv + GLU, DConv, transposed conv over time (kernel 8, stride 4) cut to
    ``length``, GELU except in the last layer. (batch, in, time) -> (batch, out, length).
    """

    def __init__(self, in_channels: int, out_channels: int, last: bool) -> None:
        super().__init__()
        self.last = last
        width = 1 + 2 * DECODER_CONTEXT
        self.conv_tr = nn.ConvTranspose1d(in_channels, out_channels, KERNEL_SIZE, STRIDE)
        self.rewrite = nn.Conv1d(in_channels, 2 * in_channels, width, 1, DECODER_CONTEXT)
        self.dconv = DConv(in_channels)

    def forward(self, x: Tensor, skip: Tensor, length: int) -> Tensor:
        y = F.glu(self.rewrite(x + skip), dim=1)
        y = self.dconv(y)
        pad = KERNEL_SIZE // 4
        z = self.conv_tr(y)[..., pad : pad + length]
        return z if self.last else F.gelu(z)


class FrequencyEmbedding(nn.Module):
    """A learned vector per frequency bin of the first spectral layer's output, stored divided by ``scale``."""

    def __init__(self, freqs: int, channels: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.embedding = nn.Embedding(freqs, channels)
        with torch.no_grad():
            self.embedding.weight.div_(scale)

    def forward(self) -> Tensor:
        """(1, channels, freqs, 1), to add to (batch, channels, freqs, frames)."""
        return (self.embedding.weight * self.scale).t()[None, :, :, None]


# --------------------------------------------------------------------------------------------------------------
# The cross-transformer, on tokens (batch, tokens, channels).


class Attention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters (packed input projection).

    Runs through ``F.scaled_dot_product_attention``; ``dropout`` applies to the attention weights in training.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, memory: Tensor | None = None) -> Tensor:
        """``x`` (batch, n, dim) attends to ``memory`` (batch, m, dim), or to itself -> (batch, n, dim)."""
        batch, count, dim = x.shape
        head_dim = dim // self.heads
        if memory is None:
            qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
            query, key, value = qkv.view(batch, count, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        else:
            query = F.linear(x, self.in_proj_weight[:dim], self.in_proj_bias[:dim])
            query = query.view(batch, count, self.heads, head_dim).transpose(1, 2)
            kv = F.linear(memory, self.in_proj_weight[dim:], self.in_proj_bias[dim:])
            key, value = kv.view(batch, memory.shape[1], 2, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(batch, count, dim))


class TokenGroupNorm(nn.Module):
    """GroupNorm with one group over (tokens, channels) of each batch item, per-channel affine."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        normed = F.layer_norm(x, x.shape[-2:], eps=NORM_EPS)
        return torch.addcmul(self.bias, normed, self.weight)


class _TransformerLayer(nn.Module):
    """Pre-norm layer: attention and a GELU feed-forward, each a LayerScaled residual, then a TokenGroupNorm."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm1 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.norm2 = nn.LayerNorm(dim, eps=NORM_EPS)
        self.norm_out = TokenGroupNorm(dim)
        self.gamma_1 = LayerScale(dim, T_LAYER_SCALE_INIT, channel_last=True)
        self.gamma_2 = LayerScale(dim, T_LAYER_SCALE_INIT, channel_last=True)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def _feed_forward(self, x: Tensor, norm: nn.Module) -> Tensor:
        hidden = self.dropout(F.gelu(self.linear1(norm(x))))
        return torch.addcmul(x, self.gamma_2.scale, self.dropout2(self.linear2(hidden)))


class SelfAttentionLayer(_TransformerLayer):
    """Tokens attend to their own branch. (batch, n, dim) -> (batch, n, dim)."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__(dim, heads, hidden, dropout)
        self.self_attn = Attention(dim, heads, dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.addcmul(x, self.gamma_1.scale, self.dropout1(self.self_attn(self.norm1(x))))
        return self.norm_out(self._feed_forward(x, self.norm2))


class CrossAttentionLayer(_TransformerLayer):
    """Tokens attend to the other branch's tokens. (batch, n, dim), (batch, m, dim) -> (batch, n, dim)."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__(dim, heads, hidden, dropout)
        self.cross_attn = Attention(dim, heads, dropout)
        self.norm3 = nn.LayerNorm(dim, eps=NORM_EPS)

    def forward(self, x: Tensor, other: Tensor) -> Tensor:
        x = torch.addcmul(x, self.gamma_1.scale, self.dropout1(self.cross_attn(self.norm1(x), self.norm2(other))))
        return self.norm_out(self._feed_forward(x, self.norm3))


def sin_embedding(length: int, dim: int, device: torch.device) -> Tensor:
    """Sinusoidal positions (length, dim): cosines then sines, periods up to ``T_MAX_PERIOD``."""
    half = dim // 2
    positions = torch.arange(length, device=device).view(-1, 1)
    rates = T_MAX_PERIOD ** (torch.arange(half, device=device).view(1, -1) / (half - 1))
    phase = positions / rates
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


def grid_sin_embedding(dim: int, freqs: int, frames: int, device: torch.device) -> Tensor:
    """2-D sinusoidal positions of the spectral tokens (frames * freqs, dim), frame-major.

    The first half of the channels encodes the frame (sin, cos interleaved), the second the frequency.
    """
    quarter_rates = torch.exp(torch.arange(0.0, dim // 2, 2, device=device) * -(math.log(T_MAX_PERIOD) / (dim // 2)))

    def encode(count: int) -> Tensor:
        angle = torch.arange(0.0, count, device=device).unsqueeze(1) * quarter_rates
        return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(count, dim // 2)

    by_frame = encode(frames)[:, None, :].expand(frames, freqs, dim // 2)
    by_freq = encode(freqs)[None, :, :].expand(frames, freqs, dim // 2)
    return torch.cat([by_frame, by_freq], dim=-1).reshape(frames * freqs, dim)


class CrossTransformer(nn.Module):
    """Layers alternate self-attention (even indices) and cross-attention between the two branches."""

    def __init__(self, dim: int, layers: int, heads: int, hidden_scale: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * hidden_scale)
        self.norm_in = nn.LayerNorm(dim, eps=NORM_EPS)
        self.norm_in_t = nn.LayerNorm(dim, eps=NORM_EPS)
        self.layers = nn.ModuleList()
        self.layers_t = nn.ModuleList()
        for index in range(layers):
            kind = SelfAttentionLayer if index % 2 == 0 else CrossAttentionLayer
            self.layers.append(kind(dim, heads, hidden, dropout))
            self.layers_t.append(kind(dim, heads, hidden, dropout))
        self._grid_cache: tuple[tuple[Any, ...], Tensor] | None = None

    def _grid(self, dim: int, freqs: int, frames: int, device: torch.device) -> Tensor:
        key = (dim, freqs, frames, device)
        if self._grid_cache is None or self._grid_cache[0] != key:
            self._grid_cache = (key, grid_sin_embedding(dim, freqs, frames, device))
        return self._grid_cache[1]

    def forward(self, spec: Tensor, wave: Tensor, freqs: int, frames: int) -> tuple[Tensor, Tensor]:
        """``spec`` (batch, frames * freqs, dim) frame-major, ``wave`` (batch, time, dim) -> both updated."""
        spec, wave = self.embed(spec, wave, freqs, frames)
        return self.run_layers(spec, wave, 0, len(self.layers))

    def embed(self, spec: Tensor, wave: Tensor, freqs: int, frames: int) -> tuple[Tensor, Tensor]:
        """The input norms and positional embeddings, before the first layer."""
        dim = spec.shape[-1]
        spec = self.norm_in(spec) + self._grid(dim, freqs, frames, spec.device)
        wave = self.norm_in_t(wave) + sin_embedding(wave.shape[1], dim, wave.device)
        return spec, wave

    def run_layers(self, spec: Tensor, wave: Tensor, first: int, stop: int, *, recompute: bool = False) -> tuple[Tensor, Tensor]:
        """Layers ``first`` to ``stop - 1`` of both branches; with ``recompute`` (and gradients) each layer
        keeps only its inputs for the backward pass and runs again there (activation checkpointing)."""
        for index in range(first, stop):
            layer, layer_t = self.layers[index], self.layers_t[index]
            if recompute and torch.is_grad_enabled():
                spec, wave = torch.utils.checkpoint.checkpoint(_layer_pair, layer, layer_t, spec, wave, use_reentrant=False)
            else:
                spec, wave = _layer_pair(layer, layer_t, spec, wave)
        return spec, wave


def _layer_pair(layer: nn.Module, layer_t: nn.Module, spec: Tensor, wave: Tensor) -> tuple[Tensor, Tensor]:
    """One transformer layer of both branches: each attends to itself, or to the other's input tokens."""
    if isinstance(layer, SelfAttentionLayer):
        return layer(spec), layer_t(wave)
    return layer(spec, wave), layer_t(wave, spec)


# --------------------------------------------------------------------------------------------------------------
# The model.


@dataclass(frozen=True)
class HTDemucsState:
    """What passes between the stages. Tensors are never modified in place, so a state can be reused.

    Shapes for the released ``htdemucs`` and one segment (batch B): ``spec`` (B, 384, 8, 336) after
    :meth:`HTDemucs.encode`, (B, 16, 2048, 336) after the last decoder layer; ``wave`` (B, 384, 1344), then
    (B, 8, 343980). ``spec_skips`` (outermost first): (B, 48, 512, 336), (B, 96, 128, 336), (B, 192, 32, 336),
    (B, 384, 8, 336); ``wave_skips``: (B, 48, 85995), (B, 96, 21499), (B, 192, 5375), (B, 384, 1344).
    The decoder layers consume the skips from the end.
    """

    length: int  # samples of the input mixture
    padded_length: int  # samples the network ran on (the segment, for a shorter input in eval mode)
    spec: Tensor  # spectral features
    wave: Tensor  # temporal features
    spec_skips: tuple[Tensor, ...]
    wave_skips: tuple[Tensor, ...]
    wave_lengths: tuple[int, ...]  # input length of each temporal encoder layer
    spec_mean: Tensor  # (B, 1, 1, 1) statistics of the spectral input
    spec_std: Tensor
    wave_mean: Tensor  # (B, 1, 1) statistics of the waveform
    wave_std: Tensor
    transformed: bool = False
    decoded: int = 0  # decoder layers applied (each layer of both branches counts once)


class HTDemucs(SeparationModel):
    """HT-Demucs mapping a normalised mixture (batch, channels, time) to stems (batch, sources, channels, time).

    Stages: :meth:`encode` (STFT, normalisation, both encoders), :meth:`transform` (channel up-samplers,
    cross-transformer, channel down-samplers), :meth:`decode_layers` (the next decoder layers of both
    branches) and :meth:`decode` (the remaining decoder layers, iSTFT, sum of the branches).
    ``forward(mix) == decode(transform(encode(mix)))``.
    """

    window: Tensor

    def __init__(self, config: HTDemucsConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or HTDemucsConfig()
        sources = len(config.sources)
        self.encoder = nn.ModuleList()
        self.tencoder = nn.ModuleList()
        decoder: list[nn.Module] = []
        tdecoder: list[nn.Module] = []
        spec_in, wave_in = 2 * config.audio_channels, config.audio_channels
        for index in range(config.depth):
            out = config.channels * GROWTH**index
            self.encoder.append(FreqEncoderLayer(spec_in, out))
            self.tencoder.append(TimeEncoderLayer(wave_in, out))
            spec_back = 2 * config.audio_channels * sources if index == 0 else spec_in
            wave_back = config.audio_channels * sources if index == 0 else wave_in
            decoder.insert(0, FreqDecoderLayer(out, spec_back, last=index == 0))
            tdecoder.insert(0, TimeDecoderLayer(out, wave_back, last=index == 0))
            spec_in = wave_in = out
        self.decoder = nn.ModuleList(decoder)
        self.tdecoder = nn.ModuleList(tdecoder)
        self.freq_emb = FrequencyEmbedding(config.nfft // 2 // STRIDE, config.channels, FREQ_EMB_SCALE)
        bottom = config.bottom_channels
        if bottom:
            width = config.encoder_channels
            self.channel_upsampler = nn.Conv1d(width, bottom, 1)
            self.channel_downsampler = nn.Conv1d(bottom, width, 1)
            self.channel_upsampler_t = nn.Conv1d(width, bottom, 1)
            self.channel_downsampler_t = nn.Conv1d(bottom, width, 1)
        self.crosstransformer = CrossTransformer(
            config.transformer_channels, config.t_layers, config.t_heads, config.t_hidden_scale, config.t_dropout
        )
        # Made on the CPU and moved where the parameters were made: on the meta device (where model files are checked
        # against their configuration) PyTorch computes hann_window through its compiler stack, seconds to load.
        window = torch.hann_window(config.nfft, device="cpu").to(next(self.parameters()).device)
        self.register_buffer("window", window, persistent=False)

    @property
    def sources(self) -> tuple[str, ...]:
        return self.config.sources

    @property
    def samplerate(self) -> int:
        return self.config.samplerate

    @property
    def audio_channels(self) -> int:
        return self.config.audio_channels

    @property
    def segment_samples(self) -> int:
        """The training segment in samples: shorter eval inputs are padded to it, longer ones refused."""
        return self.config.segment_samples

    # How the separation loop runs it (as demucs 4's apply_model): segments of the training length; a
    # shorter chunk is centred in the song's own samples around it and padded to that length.
    centred_padding = True
    # demucs 4's cross-transformer calls random.randrange(1) on every forward (a sinusoidal-embedding shift,
    # always 0 in the released models): it takes no effect but advances the generator --shifts draws from.
    random_draws_per_forward = 1

    @property
    def segment_length(self) -> int:
        return self.segment_samples

    @property
    def min_length(self) -> int:
        return 1

    @property
    def max_segment_length(self) -> int:
        return self.segment_samples

    def valid_length(self, length: int, segment: int) -> int:
        """The segment (demucs 4 widens every chunk to it; the network then pads it to its training length)."""
        return max(length, segment)

    # ---- spectrogram helpers

    def _stft(self, mix: Tensor) -> Tensor:
        """(batch, channels, time) -> complex (batch, channels, nfft / 2, ceil(time / hop))."""
        hop = self.config.hop_length
        frames = -(-mix.shape[-1] // hop)
        pad = hop // 2 * 3
        padded = _reflect_pad(mix, pad, pad + frames * hop - mix.shape[-1])
        batch, channels, length = padded.shape
        spec = torch.stft(
            padded.reshape(-1, length),
            self.config.nfft,
            hop,
            window=self.window.to(mix.dtype),
            win_length=self.config.nfft,
            normalized=True,
            center=True,
            return_complex=True,
            pad_mode="reflect",
        )
        spec = spec.view(batch, channels, spec.shape[-2], spec.shape[-1])
        return spec[..., :-1, 2 : 2 + frames]

    def _istft(self, padded: Tensor, length: int) -> Tensor:
        """The inverse of :meth:`_stft`: complex (..., nfft / 2 + 1, frames + 4), the spectrogram padded with
        a zero top frequency and two zero frames on each side, -> (..., length)."""
        hop = self.config.hop_length
        pad = hop // 2 * 3
        total = hop * -(-length // hop) + 2 * pad
        *lead, freqs, frames = padded.shape
        if padded.is_meta:  # shapes only (counting the network's work): torch.istft has no meta kernel
            return torch.empty(*lead, length, device="meta")
        wave = torch.istft(
            padded.reshape(-1, freqs, frames),
            self.config.nfft,
            hop,
            window=self.window.to(padded.real.dtype),
            win_length=self.config.nfft,
            normalized=True,
            length=total,
            center=True,
        )
        return wave.view(*lead, total)[..., pad : pad + length]

    # ---- stages

    def encode(self, mix: Tensor, pad_to_segment: bool | None = None) -> HTDemucsState:
        """Both encoders on ``mix`` (batch, audio_channels, time).

        ``pad_to_segment`` (default: in eval mode) zero-pads a shorter input to the training segment, as
        demucs does in eval mode; in eval mode an input longer than the segment is refused.
        """
        if mix.dim() != 3 or mix.shape[1] != self.audio_channels:
            raise InputError(
                f"HT-Demucs expects (batch, {self.audio_channels}, time) audio, got shape {tuple(mix.shape)}"
            )
        length = mix.shape[-1]
        segment = self.segment_samples
        if pad_to_segment is None:
            pad_to_segment = not self.training
        if pad_to_segment:
            if length > segment:
                raise InputError(
                    f"input of {length} samples is longer than the model's segment of {segment} samples; "
                    "separate it in segments"
                )
            mix = F.pad(mix, (0, segment - length))
        spec = self._stft(mix)
        batch, channels, freqs, frames = spec.shape
        x = torch.view_as_real(spec).permute(0, 1, 4, 2, 3).reshape(batch, 2 * channels, freqs, frames)
        spec_mean = x.mean(dim=(1, 2, 3), keepdim=True)
        spec_std = x.std(dim=(1, 2, 3), keepdim=True)
        x = ((x - spec_mean) / (SPEC_EPS + spec_std)).contiguous(memory_format=torch.channels_last)
        wave_mean = mix.mean(dim=(1, 2), keepdim=True)
        wave_std = mix.std(dim=(1, 2), keepdim=True)
        xt = (mix - wave_mean) / (SPEC_EPS + wave_std)

        spec_skips, wave_skips, wave_lengths = [], [], []
        for index, layer in enumerate(self.encoder):
            x = layer(x)
            if index == 0:
                x = x + FREQ_EMB_WEIGHT * self.freq_emb()
            spec_skips.append(x)
        for layer in self.tencoder:
            wave_lengths.append(xt.shape[-1])
            xt = layer(xt)
            wave_skips.append(xt)
        return HTDemucsState(
            length=length,
            padded_length=mix.shape[-1],
            spec=x,
            wave=xt,
            spec_skips=tuple(spec_skips),
            wave_skips=tuple(wave_skips),
            wave_lengths=tuple(wave_lengths),
            spec_mean=spec_mean,
            spec_std=spec_std,
            wave_mean=wave_mean,
            wave_std=wave_std,
        )

    def transform(self, state: HTDemucsState) -> HTDemucsState:
        """Channel up-samplers, cross-transformer and down-samplers on the encoders' outputs.

        ``spec`` (B, C, F, T) becomes F * T tokens, frame-major; ``wave`` (B, C, T') becomes T' tokens.
        """
        if state.transformed:
            raise ValueError("this state has been through the transformer already")
        spec_tokens, wave_tokens = self.transformer_tokens(state)
        spec_tokens, wave_tokens = self.crosstransformer.run_layers(spec_tokens, wave_tokens, 0, self.config.t_layers)
        return self.from_tokens(state, spec_tokens, wave_tokens)

    def transformer_tokens(self, state: HTDemucsState) -> tuple[Tensor, Tensor]:
        """The encoders' outputs as the transformer's first layer sees them: tokens (batch, n, width) through
        the channel up-samplers, with the input norms and positional embeddings."""
        if state.transformed:
            raise ValueError("this state has been through the transformer already")
        spec, wave = state.spec, state.wave
        batch, channels, freqs, frames = spec.shape
        spec_tokens = spec.permute(0, 3, 2, 1).reshape(batch, frames * freqs, channels)
        wave_tokens = wave.transpose(1, 2)
        if self.config.bottom_channels:
            spec_tokens = _pointwise(self.channel_upsampler, spec_tokens)
            wave_tokens = _pointwise(self.channel_upsampler_t, wave_tokens)
        return self.crosstransformer.embed(spec_tokens, wave_tokens, freqs, frames)

    def from_tokens(self, state: HTDemucsState, spec_tokens: Tensor, wave_tokens: Tensor) -> HTDemucsState:
        """The last transformer layer's tokens back to feature maps, through the channel down-samplers."""
        batch, channels, freqs, frames = state.spec.shape
        if self.config.bottom_channels:
            spec_tokens = _pointwise(self.channel_downsampler, spec_tokens)
            wave_tokens = _pointwise(self.channel_downsampler_t, wave_tokens)
        spec = spec_tokens.view(batch, frames, freqs, channels).permute(0, 3, 2, 1)
        spec = spec.contiguous(memory_format=torch.channels_last)
        wave = wave_tokens.transpose(1, 2).contiguous()
        return replace(state, spec=spec, wave=wave, transformed=True)

    def decode_layers(self, state: HTDemucsState, count: int | None = None) -> HTDemucsState:
        """The next ``count`` decoder layers (default: all remaining) of both branches."""
        if not state.transformed:
            raise ValueError("decode a state after transform()")
        depth = self.config.depth
        count = depth - state.decoded if count is None else count
        if not 0 <= count <= depth - state.decoded:
            raise ValueError(f"{count} decoder layers requested, {depth - state.decoded} left")
        spec, wave = state.spec, state.wave
        spec_skips, wave_skips, wave_lengths = state.spec_skips, state.wave_skips, state.wave_lengths
        for index in range(state.decoded, state.decoded + count):
            spec = self.decoder[index](spec, spec_skips[-1])
            wave = self.tdecoder[index](wave, wave_skips[-1], wave_lengths[-1])
            spec_skips, wave_skips, wave_lengths = spec_skips[:-1], wave_skips[:-1], wave_lengths[:-1]
        return replace(
            state,
            spec=spec,
            wave=wave,
            spec_skips=spec_skips,
            wave_skips=wave_skips,
            wave_lengths=wave_lengths,
            decoded=state.decoded + count,
        )

    def decode(self, state: HTDemucsState) -> Tensor:
        """The remaining decoder layers, then the stems (batch, sources, audio_channels, length)."""
        state = self.decode_layers(state)
        sources, channels = len(self.sources), self.audio_channels
        spec, wave = state.spec, state.wave
        batch, _, freqs, frames = spec.shape
        # Complex spectrograms (batch, sources, channels, freqs, frames) from the real and imaginary channels,
        # denormalised and written straight into the zero padding the iSTFT needs.
        parts = spec.unflatten(1, (sources, channels, 2)).permute(0, 1, 2, 4, 5, 3)
        shape = (batch, 1, 1, 1, 1, 1)
        mean, std = state.spec_mean.view(shape), state.spec_std.view(shape)
        if torch.is_grad_enabled():
            padded = F.pad(torch.view_as_complex((parts * std + mean).contiguous()), (2, 2, 0, 1))
        else:
            real = spec.new_zeros(batch, sources, channels, freqs + 1, frames + 4, 2)
            torch.addcmul(mean, parts, std, out=real[:, :, :, :freqs, 2:-2])
            padded = torch.view_as_complex(real)
        stems = self._istft(padded, state.padded_length)
        wave = wave.view(batch, sources, channels, state.padded_length)
        stems = wave * state.wave_std[:, None] + state.wave_mean[:, None] + stems
        return stems[..., : state.length]

    def forward(self, mix: Tensor) -> Tensor:
        return self.decode(self.transform(self.encode(mix)))


def _pointwise(conv: nn.Conv1d, tokens: Tensor) -> Tensor:
    """A 1x1 ``nn.Conv1d`` applied to tokens (batch, n, in) -> (batch, n, out)."""
    return F.linear(tokens, conv.weight[:, :, 0], conv.bias)


def _reflect_pad(x: Tensor, left: int, right: int) -> Tensor:
    """Reflect padding of the last dim; an input too short to reflect is first zero-padded (as demucs does)."""
    length = x.shape[-1]
    widest = max(left, right)
    if length <= widest:
        extra = widest - length + 1
        extra_right = min(right, extra)
        extra_left = extra - extra_right
        x = F.pad(x, (extra_left, extra_right))
        left, right = left - extra_left, right - extra_right
    return F.pad(x, (left, right), mode="reflect")


_CONFIG_NUMBERS = ("audio_channels", "samplerate", "channels", "nfft", "depth", "bottom_channels", "t_layers",
                   "t_heads", "t_hidden_scale", "t_dropout")


def htdemucs_config_dict(config: HTDemucsConfig) -> dict[str, Any]:
    """Plain values (the segment as [numerator, denominator]), safe for ``torch.load(weights_only=True)``."""
    values: dict[str, Any] = {name: getattr(config, name) for name in _CONFIG_NUMBERS}
    values["sources"] = list(config.sources)
    values["segment"] = [config.segment.numerator, config.segment.denominator]
    return values


def htdemucs_config_from_dict(values: Mapping[str, Any]) -> HTDemucsConfig:
    """The inverse of :func:`htdemucs_config_dict` (validated by :class:`HTDemucsConfig`)."""
    known = {*_CONFIG_NUMBERS, "sources", "segment"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"HT-Demucs config: unknown keys {unknown}")
    numerator, denominator = values["segment"]
    if not int(denominator) > 0:
        raise InputError(f"HT-Demucs config: segment {numerator}/{denominator} is not a number of seconds")
    return HTDemucsConfig(**{**{k: v for k, v in values.items() if k != "segment"},
                             "sources": tuple(values["sources"]), "segment": Fraction(int(numerator), int(denominator))})


def build_htdemucs(kwargs: Mapping[str, Any], state: Mapping[str, Tensor], origin: str = "HT-Demucs model") -> HTDemucs:
    """An :class:`HTDemucs` in eval mode from a demucs package's ``kwargs`` and ``state`` (fp16 becomes fp32).

    Raises ``InputError`` naming ``origin`` for a configuration other than the released ones, or a state dict
    whose keys or shapes do not match.
    """
    return build_from_config(config_from_kwargs(kwargs, origin), state, origin)


def build_from_config(config: HTDemucsConfig, state: Mapping[str, Tensor], origin: str = "HT-Demucs model") -> HTDemucs:
    """An :class:`HTDemucs` of ``config`` in eval mode with ``state`` loaded strictly (as fp32)."""
    for key, tensor in state.items():
        if not isinstance(tensor, Tensor) or not tensor.is_floating_point():
            raise InputError(f"{origin}: state dict entry {key} is not a floating-point tensor")
    mismatch = state_mismatch(lambda: HTDemucs(config), state)  # before allocating the network
    if mismatch is not None:
        raise InputError(f"{origin}: state dict does not match the HT-Demucs configuration: {mismatch}")
    return build_loaded(lambda: HTDemucs(config), {key: tensor.float() for key, tensor in state.items()}).eval()


__all__ = [
    "FOUR_SOURCES",
    "SIX_SOURCES",
    "HTDemucs",
    "HTDemucsConfig",
    "HTDemucsState",
    "build_from_config",
    "build_htdemucs",
    "config_from_kwargs",
]

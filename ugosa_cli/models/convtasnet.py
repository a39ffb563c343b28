"""ConvTasNet for music source separation, compatible with the demucs v2 ``tasnet`` weights.

The module tree reproduces the parameter names of demucs 2.0.3's ConvTasNet so that its state dicts
load unchanged; the configuration is a dataclass of plain values so smaller models (tests, the demo
model) are built the same way and saved with their configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ugosa_cli.errors import InputError
from ugosa_cli.models.family import (
    SeparationModel,
    build_loaded,
    oversized,
    rate_and_segment_problem,
    state_mismatch,
)
from ugosa_cli.sources import DEFAULT_SOURCES, check_source_names

EPS = 1e-8
# The sizes of demucs v2's released ``tasnet`` (X is bounded by the segment instead): a configuration may ask for up
# to :data:`~ugosa_cli.models.family.MAX_SIZE_FACTOR` times each.
RELEASED_SIZES = {"N": 256, "L": 20, "B": 256, "H": 512, "P": 3, "R": 4}


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a ConvTasNet (names as in Luo & Mesgarani and demucs v2)."""

    sources: tuple[str, ...] = DEFAULT_SOURCES
    N: int = 256  # encoder filters
    L: int = 20  # encoder filter length (samples); hop is L // 2
    B: int = 256  # bottleneck channels
    H: int = 512  # channels inside each block
    P: int = 3  # depthwise kernel size
    X: int = 10  # blocks per repeat
    R: int = 4  # repeats
    audio_channels: int = 2
    samplerate: int = 44100
    segment: int = 44100 * 8  # samples per segment when separating long inputs

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "sources", check_source_names(self.sources))
        except InputError as exc:
            raise InputError(f"model config: {exc.message}") from None
        for name in ("N", "L", "B", "H", "P", "X", "R", "audio_channels", "samplerate", "segment"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"model config: {name} must be a positive integer, got {value!r}")
        if self.L % 2:
            raise InputError(f"model config: L must be even, got {self.L}")
        problem = oversized(dataclasses.asdict(self), RELEASED_SIZES) or rate_and_segment_problem(
            self.samplerate, self.audio_channels, self.segment, self.L
        )
        frames = self.segment // (self.L // 2)  # encoder frames of one segment
        if problem is None and frames.bit_length() <= self.X - 1:  # 2 ** (X - 1) > frames, without computing it
            problem = (f"X {self.X}: the last block's dilation, 2**(X-1), is longer than a segment ({frames} frames), "
                       "so it would see only padding")
        if problem is not None:
            raise InputError(f"model config: {problem}; the file is damaged or not a ConvTasNet ugosa can run: use another model file")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (lists, ints, strs), safe for ``torch.load(weights_only=True)``."""
        values = dataclasses.asdict(self)
        values["sources"] = list(self.sources)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"model config: unknown keys {unknown}")
        return cls(**dict(values))


class ChannelNorm(nn.Module):
    """Normalises each frame over channels (cLN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return self.gamma * (x - mean) / torch.sqrt(var + EPS) + self.beta


class GlobalNorm(nn.Module):
    """Normalises each example over channels and time together (gLN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, channels, 1))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        scale, shift = self.scale_shift(x)
        return torch.addcmul(shift, x, scale)

    def scale_shift(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-example ``scale`` and ``shift`` (batch, channels, 1) with ``gLN(x) = x * scale + shift``."""
        mean, var = global_moments(x)
        scale = self.gamma * torch.rsqrt(var + EPS)
        return scale, self.beta - mean * scale


def global_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (biased) variance of each example of ``x`` (batch, channels, frames), shaped (batch, 1, 1).

    One pass for the sums and one for the sums of squares, both per channel (float32 accumulations over
    time, combined in float64) and near memory speed, where ``torch.var_mean`` (Welford) is twenty times slower
    on CPU. ``E[x^2] - E[x]^2`` loses digits when the mean is many standard deviations from zero; gLN
    inputs (PReLU outputs, mean^2/var below 1) are far from that.
    """
    count = x.shape[1] * x.shape[2]
    mean = x.sum(dim=2).double().sum(dim=1) / count
    if torch.is_grad_enabled():  # a norm's gradient is undefined at a silent channel
        squares = torch.einsum("bct,bct->bc", x, x)
    else:  # faster, and its accumulation is ten times more accurate over long segments
        squares = torch.linalg.vector_norm(x, dim=2).square()
    mean_square = squares.double().sum(dim=1) / count
    var = (mean_square - mean.square()).clamp_min(0)
    return mean.to(x.dtype)[:, None, None], var.to(x.dtype)[:, None, None]


class Encoder(nn.Module):
    """Learned analysis filterbank: strided 1-D convolution followed by ReLU."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.conv1d_U = nn.Conv1d(
            config.audio_channels, config.N, kernel_size=config.L, stride=config.L // 2, bias=False
        )

    def forward(self, mix: Tensor) -> Tensor:
        return F.relu(self.conv1d_U(mix))


class Decoder(nn.Module):
    """Learned synthesis: one basis vector per frame and channel, overlap-added with hop L/2."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.audio_channels = config.audio_channels
        self.L = config.L
        self.basis_signals = nn.Linear(config.N, config.audio_channels * config.L, bias=False)

    def forward(self, mixture_w: Tensor, mask: Tensor) -> Tensor:
        """``mixture_w`` (batch, N, frames), ``mask`` (batch, sources, N, frames) -> waveforms."""
        batch, sources, _, frames = mask.shape
        masked = mixture_w.unsqueeze(1) * mask if torch.is_grad_enabled() else mask.mul_(mixture_w.unsqueeze(1))
        source_w = masked.transpose(2, 3)  # (b, s, frames, N)
        frames_out = self.basis_signals(source_w)  # (b, s, frames, channels * L)
        frames_out = frames_out.view(batch * sources, frames, self.audio_channels * self.L)
        hop = self.L // 2
        length = hop * (frames - 1) + self.L
        # Overlap-add as a fold over (frames, channels * L) columns.
        wave = F.fold(
            frames_out.transpose(1, 2),
            output_size=(1, length),
            kernel_size=(1, self.L),
            stride=(1, hop),
        )
        return wave.view(batch, sources, self.audio_channels, length)


class TemporalBlock(nn.Module):
    """Residual block: 1x1 conv, PReLU, gLN, then a dilated depthwise-separable conv."""

    def __init__(self, config: ModelConfig, dilation: int) -> None:
        super().__init__()
        B, H, P = config.B, config.H, config.P
        self.net = nn.Sequential(
            nn.Conv1d(B, H, 1, bias=False),
            nn.PReLU(),
            GlobalNorm(H),
            DepthwiseSeparableConv(H, B, P, dilation),
        )

    @property
    def separable(self) -> DepthwiseSeparableConv:
        """The block's dilated depthwise-separable conv (``net.3``), the part strategy L4 trains."""
        return cast(DepthwiseSeparableConv, self.net[3])

    def hidden(self, x: Tensor) -> Tensor:
        """The input of :attr:`separable`: 1x1 conv, PReLU and gLN of ``x`` (batch, B, frames) -> (batch, H, frames)."""
        return self.net[2](self.net[1](self.net[0](x)))

    def forward(self, x: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return x + self.net(x)
        return self.fused_forward(x)

    def fused_forward(self, x: Tensor, scratch: tuple[Tensor, Tensor] | None = None, out: Tensor | None = None) -> Tensor:
        """The same function for inference, with each gLN folded into the convolution after it.

        The first gLN's per-example scale goes into the depthwise taps and its shift into a bias
        (corrected where a tap falls on the zero padding); the second gLN goes into the pointwise conv's
        weights and a bias, and the residual add into its matrix product. PReLUs run in place. Only the
        1x1 product, the depthwise taps and two statistics passes touch the (batch, H, frames) tensors.
        ``scratch`` (two (batch, H, frames) buffers) and ``out`` (like ``x``) spare fresh allocations,
        which on CPU cost as much as the arithmetic at full segment length (page faults).
        """
        conv_in, prelu_in, norm_in = cast(tuple[nn.Conv1d, nn.PReLU, GlobalNorm], (self.net[0], self.net[1], self.net[2]))
        depthwise, prelu_mid, norm_mid, pointwise = self.separable.layers
        first, second = scratch if scratch is not None else (None, None)
        hidden = torch.bmm(conv_in.weight[:, :, 0].expand(x.shape[0], -1, -1), x, out=first)
        F.leaky_relu_(hidden, float(prelu_in.weight))
        scale, shift = norm_in.scale_shift(hidden)
        taps = depthwise.weight[:, 0, :]
        hidden = _depthwise_affine(hidden, taps, depthwise.dilation[0], scale, shift, out=second)
        F.leaky_relu_(hidden, float(prelu_mid.weight))
        scale, shift = norm_mid.scale_shift(hidden)
        weight = pointwise.weight[:, :, 0]
        out = torch.baddbmm(x, weight * scale.transpose(1, 2), hidden, out=out)
        # torch.matmul would fold this product differently when the weight requires gradients (1e-7 apart), so a
        # model just adapted and the same model loaded from its file would not separate alike; mm has one path.
        return out.add_(torch.mm(shift[:, :, 0], weight.t()).unsqueeze(-1))


def _depthwise_affine(
    x: Tensor, taps: Tensor, dilation: int, scale: Tensor, shift: Tensor, out: Tensor | None = None
) -> Tensor:
    """Zero-padded ("same") dilated depthwise conv of ``x * scale + shift`` without forming that tensor.

    ``taps`` (channels, kernel) with an odd kernel; ``scale`` and ``shift`` (batch, channels, 1). Each tap
    is one fused multiply-add over shifted views; the shift contributes ``shift * sum(taps)``, less the taps
    that fall on the padding near either end.
    """
    kernel = taps.shape[-1]
    centre = kernel // 2
    frames = x.shape[-1]
    scaled = taps * scale  # (batch, channels, kernel)
    shifted = taps * shift
    out = torch.addcmul(shifted.sum(dim=-1, keepdim=True), x, scaled[..., centre : centre + 1], out=out)
    for tap in range(kernel):
        offset = (tap - centre) * dilation
        if offset == 0:
            continue
        reach = min(abs(offset), frames)
        if offset < 0:
            out[..., reach:].addcmul_(x[..., : frames - reach], scaled[..., tap : tap + 1])
            out[..., :reach].sub_(shifted[..., tap : tap + 1])
        else:
            out[..., : frames - reach].addcmul_(x[..., reach:], scaled[..., tap : tap + 1])
            out[..., frames - reach :].sub_(shifted[..., tap : tap + 1])
    return out


def _shifted_taps(x: Tensor, taps: Tensor, dilation: int, out: Tensor) -> Tensor:
    """Zero-padded ("same") dilated depthwise conv of ``x`` (batch, channels, frames) written into ``out``.

    ``taps`` (channels, kernel) with an odd kernel: one fused multiply-add per tap over shifted views.
    """
    kernel = taps.shape[-1]
    centre = kernel // 2
    frames = x.shape[-1]
    torch.mul(x, taps[:, centre : centre + 1], out=out)
    for tap in range(kernel):
        offset = (tap - centre) * dilation
        if offset == 0 or abs(offset) >= frames:
            continue
        if offset < 0:
            out[..., -offset:].addcmul_(x[..., : frames + offset], taps[:, tap : tap + 1])
        else:
            out[..., : frames - offset].addcmul_(x[..., offset:], taps[:, tap : tap + 1])
    return out


class _DilatedDepthwise(torch.autograd.Function):
    """The depthwise conv of :class:`DepthwiseSeparableConv` with a hand-written backward pass.

    Forward and grad-input are :func:`_shifted_taps` (grad-input with the taps reversed: a correlation);
    grad-weight is one dot product per tap between the output gradient and the shifted input.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, dilation: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.dilation = dilation
        return _shifted_taps(x, weight[:, 0, :], dilation, torch.empty_like(x))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:
        x, weight = ctx.saved_tensors
        dilation = ctx.dilation
        grad = grad.contiguous()
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = _shifted_taps(grad, weight[:, 0, :].flip(-1), dilation, torch.empty_like(grad))
        if ctx.needs_input_grad[1]:
            kernel = weight.shape[-1]
            frames = x.shape[-1]
            grad_weight = torch.zeros_like(weight)
            for tap in range(kernel):
                offset = (tap - kernel // 2) * dilation
                if abs(offset) >= frames:
                    continue
                if offset < 0:
                    products = torch.einsum("bct,bct->c", grad[..., -offset:], x[..., : frames + offset])
                else:
                    products = torch.einsum("bct,bct->c", grad[..., : frames - offset], x[..., offset:])
                grad_weight[:, 0, tap] = products
        return grad_x, grad_weight, None


class DepthwiseSeparableConv(nn.Module):
    """Dilated depthwise conv, PReLU, gLN and a pointwise conv back to the bottleneck width.

    While gradients are recorded on a CPU, the depthwise conv runs as :class:`_DilatedDepthwise` (same
    values and gradients within float32 rounding) unless ``fast_backward`` is off. Forward + backward of
    one (1, 512, frames) conv, kernel 3, dilations 1..512, 2 threads, fastest of 5 on a loaded machine
    (2026-11, load 6): 10 s of 44.1 kHz (44100 frames) F.conv1d 0.80-1.16 s, this path 0.25-0.34 s; 4 s
    0.26-0.74 s against 0.14-0.17 s; 1 s 46-146 ms against 3-12 ms (one 96 ms outlier). It won at every
    dilation and length, hence no per-case rule. F.conv1d's backward also took 12 s at some sizes (4 s
    windows, dilations 2-8). Autograd through a sum of shifted, scaled copies was slower than both at 4 s
    and 10 s (0.6-1.7 s). A full-size P-L2:D adaptation step on a 4 s window, alternated in one run:
    50 s with this path, 222 s with ``nn.Conv1d``.
    """

    def __init__(self, channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        padding = (kernel_size - 1) * dilation // 2
        self.net = nn.Sequential(
            nn.Conv1d(
                channels,
                channels,
                kernel_size,
                padding=padding,
                dilation=dilation,
                groups=channels,
                bias=False,
            ),
            nn.PReLU(),
            GlobalNorm(channels),
            nn.Conv1d(channels, out_channels, 1, bias=False),
        )
        self.fast_backward = True

    @property
    def layers(self) -> tuple[nn.Conv1d, nn.PReLU, GlobalNorm, nn.Conv1d]:
        """Depthwise conv, PReLU, gLN and pointwise conv, typed."""
        return cast(tuple[nn.Conv1d, nn.PReLU, GlobalNorm, nn.Conv1d], tuple(self.net))

    def forward(self, x: Tensor) -> Tensor:
        depthwise, prelu, norm, pointwise = self.layers
        weight = depthwise.weight
        if (
            self.fast_backward
            and weight.shape[-1] % 2 == 1
            and x.device.type == "cpu"
            and torch.is_grad_enabled()
            and (x.requires_grad or weight.requires_grad)
        ):
            hidden = _DilatedDepthwise.apply(x, weight, depthwise.dilation[0])
        else:
            hidden = depthwise(x)
        return pointwise(norm(prelu(hidden)))


class Separator(nn.Module):
    """Temporal convolutional network estimating one mask per source over the encoder output."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        repeats = nn.Sequential(
            *(
                nn.Sequential(*(TemporalBlock(config, 2**x) for x in range(config.X)))
                for _ in range(config.R)
            )
        )
        self.network = nn.Sequential(
            ChannelNorm(config.N),
            nn.Conv1d(config.N, config.B, 1, bias=False),
            repeats,
            nn.Conv1d(config.B, len(config.sources) * config.N, 1, bias=False),
        )


class ConvTasNet(SeparationModel):
    """ConvTasNet mapping a normalised mixture (batch, channels, time) to stems (batch, sources, channels, time).

    The forward pass is split in named stages so adaptation can run a frozen prefix once and train the rest:
    :meth:`encode`, :meth:`bottleneck`, the repeats in ``separator.network[2]``, then :meth:`decode_from`.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        self.encoder = Encoder(self.config)
        self.separator = Separator(self.config)
        self.decoder = Decoder(self.config)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_normal_(parameter)

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
    def repeats(self) -> nn.Sequential:
        """The R repeats of X temporal blocks (``separator.network.2``)."""
        return cast(nn.Sequential, self.separator.network[2])

    def block(self, repeat: int, index: int) -> TemporalBlock:
        """Temporal block ``index`` (0..X-1) of repeat ``repeat`` (0..R-1); negative indices count from the end."""
        return cast(TemporalBlock, cast(nn.Sequential, self.repeats[repeat])[index])

    @property
    def mask_conv(self) -> nn.Conv1d:
        """The 1x1 conv from the last repeat to one mask per source (``separator.network.3``)."""
        return cast(nn.Conv1d, self.separator.network[3])

    @property
    def segment_length(self) -> int:
        """Samples per segment when separating long inputs."""
        return self.config.segment

    @property
    def min_length(self) -> int:
        """The shortest input the model accepts: one encoder filter."""
        return self.config.L

    def use_fast_backward(self, enabled: bool = True) -> None:
        """Train through the hand-written depthwise conv backward (the default) or through ``nn.Conv1d``."""
        for module in self.modules():
            if isinstance(module, DepthwiseSeparableConv):
                module.fast_backward = enabled

    def encode(self, mix: Tensor) -> Tensor:
        """Encoder output (batch, N, frames)."""
        return self.encoder(mix)

    def bottleneck(self, mixture_w: Tensor) -> Tensor:
        """Normalised bottleneck features (batch, B, frames), the input of the first repeat."""
        return self.separator.network[1](self.separator.network[0](mixture_w))

    def decode_from(self, mixture_w: Tensor, features: Tensor, length: int) -> Tensor:
        """Masks from the last repeat's output ``features``, applied and decoded to ``length`` samples."""
        batch, n_filters, frames = mixture_w.shape
        scores = self.mask_conv(features)
        mask = scores.view(batch, len(self.sources), n_filters, frames)
        mask = F.relu(mask) if torch.is_grad_enabled() else F.relu_(mask)
        wave = self.decoder(mixture_w, mask)
        return F.pad(wave, (0, length - wave.shape[-1]))

    def forward(self, mix: Tensor) -> Tensor:
        if mix.shape[-1] < self.config.L:
            raise InputError(
                f"input of {mix.shape[-1]} samples is shorter than the model's filter length {self.config.L}"
            )
        mixture_w = self.encode(mix)
        features = self.bottleneck(mixture_w)
        if torch.is_grad_enabled():
            features = self.repeats(features)
        else:
            features = self._fused_repeats(features)
        return self.decode_from(mixture_w, features, mix.shape[-1])

    def _fused_repeats(self, features: Tensor) -> Tensor:
        """All blocks for inference, through two hidden buffers and two residual buffers reused by every block."""
        batch, _, frames = features.shape
        scratch = (
            features.new_empty(batch, self.config.H, frames),
            features.new_empty(batch, self.config.H, frames),
        )
        spare = torch.empty_like(features)
        for r in range(self.config.R):
            for x in range(self.config.X):
                features, spare = self.block(r, x).fused_forward(features, scratch, spare), features
        return features


def config_from_state_dict(
    state: Mapping[str, Tensor],
    *,
    sources: tuple[str, ...] | None = None,
    samplerate: int = 44100,
    segment: int | None = None,
) -> ModelConfig:
    """Infer a :class:`ModelConfig` from the tensor shapes of a demucs-style ConvTasNet state dict."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise InputError(f"not a ConvTasNet state dict: key {key!r} is missing")
        return tuple(state[key].shape)

    n_filters, audio_channels, filter_length = shape("encoder.conv1d_U.weight")
    bottleneck, _, _ = shape("separator.network.1.weight")
    hidden, _, _ = shape("separator.network.2.0.0.net.0.weight")
    _, _, kernel = shape("separator.network.2.0.0.net.3.net.0.weight")
    mask_out, _, _ = shape("separator.network.3.weight")
    repeats = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("separator.network.2."))
    blocks = 1 + max(int(k.split(".")[4]) for k in state if k.startswith("separator.network.2.0."))
    n_sources, remainder = divmod(mask_out, n_filters)
    if remainder:
        raise InputError(f"not a ConvTasNet state dict: mask conv has {mask_out} outputs for N={n_filters}")
    if sources is None:
        if n_sources != len(DEFAULT_SOURCES):
            raise InputError(
                f"the state dict has {n_sources} sources; give their names (only 4-source models are named by default)"
            )
        sources = DEFAULT_SOURCES
    return ModelConfig(
        sources=tuple(sources),
        N=n_filters,
        L=filter_length,
        B=bottleneck,
        H=hidden,
        P=kernel,
        X=blocks,
        R=repeats,
        audio_channels=audio_channels,
        samplerate=samplerate,
        segment=segment or samplerate * 8,
    )


def build_model(config: ModelConfig, state: Mapping[str, Tensor] | None = None) -> ConvTasNet:
    """A model in eval mode, with ``state`` loaded strictly (clear error on any mismatch, found before the
    network is allocated)."""
    if state is not None:
        mismatch = state_mismatch(lambda: ConvTasNet(config), state)
        if mismatch is not None:
            raise InputError(f"state dict does not match the model configuration: {mismatch}")
    model = ConvTasNet(config) if state is None else build_loaded(lambda: ConvTasNet(config), state)
    return model.eval()


def parameter_count(module: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "DEFAULT_SOURCES",
    "ConvTasNet",
    "ModelConfig",
    "build_model",
    "check_source_names",
    "config_from_state_dict",
    "parameter_count",
]

"""SCNet (sparse compression network), with the parameter names of msst 0.1.0's ``scnet`` model type, so
the state dicts of MSST's SCNet checkpoints load with ``load_state_dict(strict=True)``.

Structure (``b`` batch, ``c`` audio channels, ``F`` frequency bins, ``T`` frames; SCNet-large: dims
4, 64, 128, 256, nfft 4096, hop 1024, 6 dual-path layers):

* The input is padded at its end so the frame count is even, then STFT (rectangular window, centred,
  normalised): real and imaginary parts of each channel as channels, (b, 2c, F, T).
* Encoder: ``len(dims) - 1`` sparse down-sampling blocks. Each splits the frequencies into low, mid and
  high bands (``band_SR``), convolves each with its own stride over frequency (``band_stride``,
  ``band_kernel``), runs per-band convolution modules over time (GroupNorm, conv + GLU, depthwise conv,
  GroupNorm, Swish, 1x1 conv; residual), then a 3x3 conv; its input to the 3x3 conv is the U-Net skip.
* Separation network: ``num_dplayer`` dual-path layers (a bidirectional LSTM over frequency, then one
  over time, each pre-normed and residual), alternately in the time domain and, after an orthonormal
  real FFT over time, in its frequency domain (real and imaginary parts as channels, twice as many).
* Decoder: per block a fusion layer (skip added, channels doubled, 3x3 conv, GLU) and a sparse
  up-sampling layer (a transposed conv per band, trimmed back to the band's size); the last makes
  ``dims[0]`` channels per source, read as complex spectrograms and inverted by iSTFT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from ugosa_cli.models.msst_common import MSSTNetwork, MSSTSettings

SCNET = "scnet"
BANDS = 3  # low, mid, high
GLOBAL_KERNEL = 3  # the 3x3 conv closing each encoder block


@dataclass(frozen=True)
class SCNetConfig:
    """The constructor arguments of msst's ``SCNet`` (names as in the YAML ``model:`` section), checked by
    :mod:`ugosa_cli.msst`."""

    sources: tuple[str, ...] = ("drums", "bass", "other", "vocals")
    audio_channels: int = 2
    dims: tuple[int, ...] = (4, 32, 64, 128)
    nfft: int = 4096
    hop_size: int = 1024
    win_size: int = 4096
    normalized: bool = True
    band_SR: tuple[float, ...] = (0.175, 0.392, 0.433)
    band_stride: tuple[int, ...] = (1, 4, 16)
    band_kernel: tuple[int, ...] = (3, 4, 16)
    conv_depths: tuple[int, ...] = (3, 2, 1)
    compress: int = 4
    conv_kernel: int = 3
    num_dplayer: int = 6
    expand: int = 1


class Swish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * x.sigmoid()


class ConvolutionModule(nn.Module):
    """``depth`` residual layers over (n, channels, time): GroupNorm, conv + GLU, depthwise conv, GroupNorm,
    Swish, 1x1 conv."""

    def __init__(self, channels: int, depth: int, compress: int, kernel: int) -> None:
        super().__init__()
        hidden = int(channels / compress)
        pad = kernel // 2
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.GroupNorm(1, channels), nn.Conv1d(channels, hidden * 2, kernel, padding=pad), nn.GLU(1),
                nn.Conv1d(hidden, hidden, kernel, padding=pad, groups=hidden), nn.GroupNorm(1, hidden), Swish(),
                nn.Conv1d(hidden, channels, 1),
            )
            for _ in range(abs(depth))
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = x + layer(x)
        return x


def band_edges(freqs: int, shares: Sequence[float]) -> list[tuple[int, int]]:
    """Where the low, mid and high bands of ``freqs`` bins start and end."""
    low = math.ceil(freqs * shares[0])
    mid = math.ceil(freqs * (shares[0] + shares[1]))
    return [(0, low), (low, mid), (mid, freqs)]


class SDlayer(nn.Module):
    """(b, C, F, T) -> per band (b, C', F_band / stride, T): one strided conv over frequency per band."""

    def __init__(self, channels_in: int, channels_out: int, config: SCNetConfig) -> None:
        super().__init__()
        self.shares = config.band_SR
        self.strides = config.band_stride
        self.kernels = config.band_kernel
        self.convs = nn.ModuleList(
            nn.Conv2d(channels_in, channels_out, (kernel, 1), (stride, 1))
            for kernel, stride in zip(config.band_kernel, config.band_stride)
        )

    def forward(self, x: Tensor) -> tuple[list[Tensor], list[int]]:
        bands, sizes = [], []
        for conv, stride, kernel, (start, end) in zip(self.convs, self.strides, self.kernels,
                                                      band_edges(x.shape[2], self.shares)):
            band = x[:, :, start:end]
            sizes.append(end - start)
            pad = kernel - stride if stride == 1 else (stride - band.shape[2] % stride) % stride
            bands.append(conv(F.pad(band, (0, 0, pad // 2, pad - pad // 2))))
        return bands, sizes


class SUlayer(nn.Module):
    """The inverse of :class:`SDlayer`: a transposed conv per band, trimmed back to the band's size."""

    def __init__(self, channels_in: int, channels_out: int, config: SCNetConfig) -> None:
        super().__init__()
        self.convtrs = nn.ModuleList(
            nn.ConvTranspose2d(channels_in, channels_out, (kernel, 1), (stride, 1))
            for kernel, stride in zip(config.band_kernel, config.band_stride)
        )

    def forward(self, x: Tensor, lengths: Sequence[int], sizes: Sequence[int]) -> Tensor:
        starts = [0, lengths[0], lengths[0] + lengths[1]]
        ends = [lengths[0], lengths[0] + lengths[1], x.shape[2]]
        outs = []
        for convtr, start, end, size in zip(self.convtrs, starts, ends, sizes):
            out = convtr(x[:, :, start:end])
            trim = abs(size - out.shape[2]) // 2
            outs.append(out[:, :, trim : trim + size])
        return torch.cat(outs, dim=2)


class SDblock(nn.Module):
    """One encoder block: (b, C, F, T) -> (output, skip, band lengths, band sizes)."""

    def __init__(self, channels_in: int, channels_out: int, config: SCNetConfig) -> None:
        super().__init__()
        self.SDlayer = SDlayer(channels_in, channels_out, config)
        self.conv_modules = nn.ModuleList(
            ConvolutionModule(channels_out, depth, config.compress, config.conv_kernel) for depth in config.conv_depths
        )
        self.globalconv = nn.Conv2d(channels_out, channels_out, GLOBAL_KERNEL, 1, GLOBAL_KERNEL // 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, list[int], list[int]]:
        bands, sizes = self.SDlayer(x)
        done = []
        for module, band in zip(self.conv_modules, bands):
            batch, channels, freqs, frames = band.shape
            rows = band.permute(0, 2, 1, 3).reshape(-1, channels, frames)  # each frequency a sequence over time
            done.append(F.gelu(module(rows).view(batch, freqs, channels, frames).permute(0, 2, 1, 3)))
        skip = torch.cat(done, dim=2)
        return self.globalconv(skip), skip, [band.shape[2] for band in done], sizes


class FusionLayer(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels * 2, channels * 2, 3, 1, 1)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return F.glu(self.conv((x + skip).repeat(1, 2, 1, 1)), dim=1)


class DualPathRNN(nn.Module):
    """(b, C, F, T) -> same: a pre-normed residual BiLSTM across frequency, then one across time."""

    def __init__(self, channels: int, expand: int) -> None:
        super().__init__()
        hidden = channels * expand
        self.lstm_layers = nn.ModuleList(
            nn.LSTM(channels, hidden, num_layers=1, bidirectional=True, batch_first=True) for _ in range(2)
        )
        self.linear_layers = nn.ModuleList(nn.Linear(hidden * 2, channels) for _ in range(2))
        self.norm_layers = nn.ModuleList(nn.GroupNorm(1, channels) for _ in range(2))

    def _path(self, index: int, rows: Tensor) -> Tensor:
        out, _ = self.lstm_layers[index](rows)
        return cast(Tensor, self.linear_layers[index](out))

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, freqs, frames = x.shape
        across = self.norm_layers[0](x).transpose(1, 3).reshape(batch * frames, freqs, channels)
        x = x + self._path(0, across).view(batch, frames, freqs, channels).transpose(1, 3)
        along = self.norm_layers[1](x).transpose(1, 2).reshape(batch * freqs, channels, frames).transpose(1, 2)
        return x + self._path(1, along).transpose(1, 2).reshape(batch, freqs, channels, frames).transpose(1, 2)


def to_frequency(x: Tensor) -> Tensor:
    """(b, C, F, T) -> (b, 2C, F, T // 2 + 1): the orthonormal real FFT over time, real then imaginary parts."""
    spectrum = torch.fft.rfft(x.float(), dim=3, norm="ortho")
    return torch.cat([spectrum.real, spectrum.imag], dim=1)


def to_time(x: Tensor) -> Tensor:
    """The inverse of :func:`to_frequency` (an even frame count)."""
    half = x.shape[1] // 2
    return torch.fft.irfft(torch.complex(x[:, :half].float(), x[:, half:].float()), dim=3, norm="ortho")


class SeparationNet(nn.Module):
    """Dual-path layers alternating between the time domain and its frequency domain."""

    def __init__(self, channels: int, expand: int, layers: int) -> None:
        super().__init__()
        self.dp_modules = nn.ModuleList(DualPathRNN(channels * (2 if i % 2 else 1), expand) for i in range(layers))

    def run(self, x: Tensor, first: int, stop: int, *, recompute: bool = False) -> Tensor:
        """Layers ``first`` to ``stop`` (exclusive), each followed by its domain change."""
        for index in range(first, stop):
            layer = self.dp_modules[index]
            if recompute and torch.is_grad_enabled():
                x = cast(Tensor, torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False))
            else:
                x = layer(x)
            x = to_time(x) if index % 2 else to_frequency(x)
        return x


@dataclass
class SCNetState:
    """SCNet between its stages: the features after ``encoded`` blocks / ``separated`` dual-path layers /
    ``decoded`` decoder blocks, the encoder's skips and band sizes still to be used, and the shapes the
    output needs."""

    features: Tensor
    skips: list[Tensor]
    lengths: list[list[int]]
    sizes: list[list[int]]
    separated: int
    decoded: int
    padding: int
    mix: Tensor


class SCNet(MSSTNetwork):
    """SCNet (see the module docstring). Stages: :meth:`encode` (padding, STFT, encoder),
    :meth:`separate` (dual-path layers), :meth:`decode_layers` (decoder blocks) and :meth:`output` (iSTFT);
    ``stems(mix)`` runs them all."""

    window: Tensor

    def __init__(self, config: SCNetConfig, settings: MSSTSettings) -> None:
        super().__init__(settings, len(config.sources))
        self.config = config
        dims = config.dims
        self.encoder = nn.ModuleList()
        decoder: list[nn.Module] = []
        for index in range(len(dims) - 1):
            self.encoder.append(SDblock(dims[index], dims[index + 1], config))
            back = dims[index] if index else dims[0] * len(config.sources)
            decoder.insert(0, nn.Sequential(FusionLayer(dims[index + 1]), SUlayer(dims[index + 1], back, config)))
        self.decoder = nn.ModuleList(decoder)
        self.separation_net = SeparationNet(dims[-1], config.expand, config.num_dplayer)
        self.register_buffer("window", torch.ones(config.win_size), persistent=False)

    @property
    def audio_channels(self) -> int:
        return self.config.audio_channels

    @property
    def min_length(self) -> int:
        return 1

    def _stft_options(self) -> dict[str, object]:
        config = self.config
        return dict(n_fft=config.nfft, hop_length=config.hop_size, win_length=config.win_size, window=self.window,
                    normalized=config.normalized, center=True)

    def encode(self, mix: Tensor) -> SCNetState:
        """(b, c, time) -> the encoder's output and skips."""
        hop = self.config.hop_size
        padding = hop - mix.shape[-1] % hop
        if (mix.shape[-1] + padding) // hop % 2 == 0:  # an odd number of hops: an even number of frames
            padding += hop
        padded = F.pad(mix, (0, padding))
        batch, channels, length = padded.shape
        spec = torch.stft(padded.reshape(-1, length), **self._stft_options(), return_complex=True)  # type: ignore[arg-type]
        x = torch.view_as_real(spec).permute(0, 3, 1, 2).reshape(batch, channels * 2, *spec.shape[1:])
        skips, lengths, sizes = [], [], []
        for block in self.encoder:
            x, skip, band_lengths, band_sizes = block(x)
            skips.append(skip)
            lengths.append(band_lengths)
            sizes.append(band_sizes)
        return SCNetState(x, skips, lengths, sizes, 0, 0, padding, mix)

    def separate(self, state: SCNetState, stop: int, *, recompute: bool = False) -> SCNetState:
        x = self.separation_net.run(state.features, state.separated, stop, recompute=recompute)
        return SCNetState(x, state.skips, state.lengths, state.sizes, stop, state.decoded, state.padding, state.mix)

    def decode_layers(self, state: SCNetState, stop: int, *, recompute: bool = False) -> SCNetState:
        """Decoder blocks ``state.decoded`` to ``stop`` (exclusive), each taking the deepest skip left."""
        x, skips, lengths, sizes = state.features, list(state.skips), list(state.lengths), list(state.sizes)
        for index in range(state.decoded, stop):
            block = cast(nn.Sequential, self.decoder[index])
            skip, band_lengths, band_sizes = skips.pop(), lengths.pop(), sizes.pop()
            if recompute and torch.is_grad_enabled():
                x = cast(Tensor, torch.utils.checkpoint.checkpoint(
                    _decoder_block, block, x, skip, band_lengths, band_sizes, use_reentrant=False))
            else:
                x = _decoder_block(block, x, skip, band_lengths, band_sizes)
        return SCNetState(x, skips, lengths, sizes, state.separated, stop, state.padding, state.mix)

    def output(self, state: SCNetState) -> Tensor:
        """The last decoder block's output (b, dims[0] * sources, F, T) -> stems (b, sources, c, time)."""
        x = state.features
        batch, _, freqs, frames = x.shape
        x = x.view(batch, self.config.dims[0], -1, freqs, frames).reshape(-1, 2, freqs, frames).permute(0, 2, 3, 1)
        audio = torch.istft(torch.view_as_complex(x.contiguous()), **self._stft_options())  # type: ignore[arg-type]
        audio = audio.reshape(batch, len(self.config.sources), self.config.audio_channels, -1)
        return audio[..., : -state.padding]

    def stems(self, mix: Tensor, only: int | None = None) -> Tensor:
        state = self.separate(self.encode(mix), self.config.num_dplayer)
        stems = self.output(self.decode_layers(state, len(self.decoder)))
        return stems if only is None else stems[:, only : only + 1]


def _decoder_block(block: nn.Sequential, x: Tensor, skip: Tensor, lengths: list[int], sizes: list[int]) -> Tensor:
    fusion, up = block
    return cast(Tensor, up(fusion(x, skip), lengths, sizes))

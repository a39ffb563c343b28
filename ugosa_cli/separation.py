"""Running a separation model over a whole song.

The model sees the mixture normalised by the mean and standard deviation of its mono downmix (as demucs
v2 did). Long songs are cut in segments that overlap; each segment's output is weighted by a triangle
peaking at its centre and the weighted outputs are summed and divided by the summed weights. With
``shifts=K`` the whole song is also shifted by K random offsets of up to half a second and the results
averaged (time-equivariance trick). With ``shifts=0`` the stems equal demucs 2.0.3's ``apply_model``.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from ugosa_cli.audio import Audio, fit_length, match_channels, resample
from ugosa_cli.errors import InputError
from ugosa_cli.model import ConvTasNet

ProgressCallback = Callable[[int, int], None]
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class SeparationOptions:
    """How to cut and average; ``segment`` in seconds (None: the model's own segment length)."""

    segment: float | None = None
    overlap: float = 0.25
    shifts: int = 0
    seed: int | None = None
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.segment is not None and self.segment <= 0:
            raise InputError(f"--segment {self.segment}: must be a positive number of seconds")
        if not 0 <= self.overlap < 1:
            raise InputError(f"--overlap {self.overlap}: must be at least 0 and below 1")
        if self.shifts < 0:
            raise InputError(f"--shifts {self.shifts}: must be 0 or more")
        if self.batch_size < 1:
            raise InputError(f"--batch-size {self.batch_size}: must be 1 or more")


def pick_device(name: str = "auto") -> torch.device:
    """The requested device, or for ``auto`` the best present: CUDA, then Apple MPS, then CPU."""
    if name not in DEVICES:
        raise InputError(f"--device {name}: unknown device; use one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise InputError("--device cuda: no CUDA GPU is available here; use --device auto or cpu")
    if name == "mps" and not mps:
        raise InputError("--device mps: Apple MPS is not available here; use --device auto or cpu")
    return torch.device(name)


def triangle_weight(segment: int) -> Tensor:
    """Weights rising linearly to 1 at the segment centre and falling back, all positive."""
    half = segment // 2
    weight = torch.cat([torch.arange(1, half + 1), torch.arange(segment - half, 0, -1)]).float()
    return weight / weight.max()


def segment_offsets(length: int, segment: int, overlap: float) -> list[int]:
    """Start of each segment, one every ``(1 - overlap) * segment`` samples."""
    stride = max(1, int((1 - overlap) * segment))
    return list(range(0, length, stride))


class _Segmenter:
    """Overlap-add of model outputs over the segments of one song, streamed into one output tensor.

    The song is normalised chunk by chunk (never as a whole copy), and each segment's output goes straight
    into the output, weighted by its triangle over the summed triangles where it lies: the same weighted
    average as summing everything and dividing at the end, without a second song-sized accumulator.
    """

    def __init__(self, model: ConvTasNet, segment: int, overlap: float, batch_size: int) -> None:
        self.model = model
        self.segment = segment
        self.overlap = overlap
        self.batch_size = batch_size
        self.min_length = model.config.L
        self.weight: Tensor | None = None

    def plan(self, length: int) -> list[int]:
        return segment_offsets(length, self.segment, self.overlap)

    def run(
        self,
        mix: Tensor,
        out: Tensor,
        view: tuple[int, int],
        scale: float,
        normalise: tuple[Tensor, Tensor],
        tick: Callable[[int], None],
    ) -> None:
        """Add ``scale`` times the overlap-added output of one view of ``mix`` to ``out`` (same time axis).

        ``view`` = (start, length): the view starts ``start`` samples into the song (negative: before it,
        zeros); ``normalise`` = (mean, std) of the song's mono downmix.
        """
        start, length = view
        if self.weight is None or self.weight.device != mix.device:
            self.weight = triangle_weight(self.segment).to(mix.device)
        offsets = self.plan(length)
        for group in self._batches(offsets, length):
            chunk_length = min(self.segment, length - group[0])
            batch = torch.stack([_normalised_chunk(mix, start + o, chunk_length, normalise) for o in group])
            result = self._model_forward(batch)
            for o, chunk_out in zip(group, result):
                share = self.weight[:chunk_length] * (scale / self._weight_sum(offsets, o, chunk_length, length))
                begin, end = max(start + o, 0), min(start + o + chunk_length, mix.shape[-1])
                if begin < end:
                    inside = slice(begin - start - o, end - start - o)
                    out[..., begin:end].addcmul_(chunk_out[..., inside], share[inside])
            tick(len(group))

    def _weight_sum(self, offsets: list[int], offset: int, chunk_length: int, length: int) -> Tensor:
        """Summed triangle weights of all segments over ``[offset, offset + chunk_length)``."""
        assert self.weight is not None
        total = torch.zeros(chunk_length, device=self.weight.device)
        first = bisect.bisect_left(offsets, offset - self.segment + 1)
        last = bisect.bisect_left(offsets, offset + chunk_length)
        for other in offsets[first:last]:
            other_length = min(self.segment, length - other)
            begin, end = max(other, offset), min(other + other_length, offset + chunk_length)
            total[begin - offset : end - offset] += self.weight[begin - other : end - other]
        return total

    def _model_forward(self, batch: Tensor) -> Tensor:
        """The model on a batch of equal-length chunks; chunks shorter than one filter are zero-padded."""
        length = batch.shape[-1]
        if length >= self.min_length:
            return self.model(batch)
        padded = torch.nn.functional.pad(batch, (0, self.min_length - length))
        return self.model(padded)[..., :length]

    def _batches(self, offsets: list[int], length: int) -> Iterator[list[int]]:
        """Group offsets whose segments have the same length, ``batch_size`` at a time."""
        full = [o for o in offsets if o + self.segment <= length]
        partial = [o for o in offsets if o + self.segment > length]
        for start in range(0, len(full), self.batch_size):
            yield full[start : start + self.batch_size]
        for o in partial:
            yield [o]


def _normalised_chunk(mix: Tensor, begin: int, length: int, normalise: tuple[Tensor, Tensor]) -> Tensor:
    """``(mix - mean) / std`` over ``[begin, begin + length)``, zero outside the song."""
    mean, std = normalise
    frames = mix.shape[-1]
    inside = (mix[:, max(begin, 0) : min(begin + length, frames)] - mean) / std
    return torch.nn.functional.pad(inside, (max(-begin, 0), max(begin + length - frames, 0)))


def _separate_into(
    model: ConvTasNet,
    mix: Tensor,
    normalise: tuple[Tensor, Tensor],
    options: SeparationOptions,
    progress: ProgressCallback | None,
) -> Tensor:
    """Normalised stems (sources, channels, time) of ``mix``, which is normalised on the fly."""
    segment = int(round(options.segment * model.samplerate)) if options.segment else model.config.segment
    segment = max(segment, model.config.L)
    segmenter = _Segmenter(model, segment, options.overlap, options.batch_size)
    length = mix.shape[-1]
    if options.shifts:
        max_shift = int(0.5 * model.samplerate)
        rng = random.Random(options.seed)
        shift_offsets = [rng.randint(0, max_shift) for _ in range(options.shifts)]
        views = [(s - max_shift, length + max_shift) for s in shift_offsets]
    else:
        views = [(0, length)]
    total = sum(len(segmenter.plan(view_length)) for _, view_length in views)
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, total)

    if progress:
        progress(0, total)
    out = torch.zeros(len(model.sources), *mix.shape, device=mix.device)
    with torch.inference_mode():
        for view in views:
            segmenter.run(mix, out, view, 1 / len(views), normalise, tick)
    return out


def separate_tensor(
    model: ConvTasNet,
    mix: Tensor,
    options: SeparationOptions = SeparationOptions(),
    progress: ProgressCallback | None = None,
) -> Tensor:
    """Separate a normalised mixture (channels, time) already on the model's device -> (sources, channels, time)."""
    identity = (torch.zeros((), device=mix.device), torch.ones((), device=mix.device))
    return _separate_into(model, mix, identity, options, progress)


def separate_array(
    model: ConvTasNet,
    mix: np.ndarray,
    options: SeparationOptions = SeparationOptions(),
    device: torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Separate a mixture (model channels, frames) at the model's rate -> stems (sources, channels, frames).

    Besides the mixture, only the stems are song-sized: segments are normalised, separated and added in
    one at a time, and the stems are scaled back in place.
    """
    device = device or torch.device("cpu")
    wav = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)).to(device)
    ref = wav.mean(0)
    mean, std = ref.mean(), ref.std()
    del ref
    if not torch.isfinite(std) or std <= 0:
        std = torch.ones((), device=device)  # silent input: nothing to scale
    model = model.to(device).eval()
    stems = _separate_into(model, wav, (mean, std), options, progress)
    return stems.mul_(std).add_(mean).cpu().numpy()


def separate_audio(
    model: ConvTasNet,
    audio: Audio,
    options: SeparationOptions = SeparationOptions(),
    device: torch.device | None = None,
    progress: ProgressCallback | None = None,
    *,
    downmix: bool = False,
) -> np.ndarray:
    """Stems (sources, channels, frames) at the input's rate, channel count and length."""
    mix = match_channels(audio.samples, model.audio_channels, downmix=downmix, label=audio.source)
    mix = resample(mix, audio.samplerate, model.samplerate)
    stems = separate_array(model, mix, options, device, progress)
    out_channels = min(audio.channels, 2)
    if out_channels == 1 and stems.shape[1] > 1:
        stems = stems.mean(axis=1, keepdims=True)
    elif stems.shape[1] == 1 and out_channels > 1:
        stems = np.repeat(stems, out_channels, axis=1)
    if audio.samplerate != model.samplerate:
        stems = np.stack([resample(stem, model.samplerate, audio.samplerate) for stem in stems])
    return fit_length(stems, audio.frames).astype(np.float32, copy=False)

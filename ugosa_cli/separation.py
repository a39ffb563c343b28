"""Running a separation model over a whole song.

The model sees the mixture normalised by the mean and standard deviation of its mono downmix (as demucs
did); its stems are scaled back, each with an equal share of the mean, so they add up to the mixture (demucs
gives every stem all of the mean: a constant offset comes out once per stem). Long songs are cut in segments
that overlap; each segment's output is weighted by a triangle peaking at its centre and the weighted outputs
are summed and divided by the summed weights. A segment shorter than the network needs is completed as the
network's family says (:attr:`SeparationModel.centred_padding`). With ``shifts=K`` the whole song is also
shifted by K random offsets of up to half a second and the results averaged (time-equivariance trick), as
demucs 4's ``apply_model`` does: each shift ``r`` starts a view ``0.5 s - r`` before the song that ends with
it. With ``shifts=0`` the stems equal demucs 2.0.3's ``apply_model`` for ConvTasNet, but for that share of
the mean (each stem differs from demucs' by ``mean * (1 - 1 / sources)``).

Segments run in the order of their start, and each stretch of the song is handed on as soon as no later
segment can change it: :func:`separate_blocks` reads a file and yields its stems block by block, so a
song of any length separates in the memory of a few segments.

MSST models (:attr:`SeparationModel.fade_chunking`) are cut as msst's ``demix`` cuts them: chunks of the
model's chunk size every ``chunk // num_overlap`` samples over the song extended by ``chunk - step``
samples at both ends (reflected; not for songs shorter than twice that), a chunk that runs past the end
completed to the chunk size (reflected when more than half of it is there, else zeros), each chunk's output
weighted by linear fades of a tenth of a chunk, summed and divided by the summed weights (0 where they are
0). As in msst, the fades depend on how ``inference.batch_size`` groups the chunks: the first chunk has no
fade-in only when it forms a batch alone, and every chunk of the last batch has no fade-out. Their input is
not normalised unless their configuration asks for it.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ugosa_cli.audio import Audio, BlockReader, StreamResampler, fit_length, match_channels
from ugosa_cli.errors import InputError, SettingError
from ugosa_cli.models.bag import ModelBag
from ugosa_cli.models.family import MAX_SEGMENT_SECONDS, SeparationModel, stems_from_normalised

ProgressCallback = Callable[[int, int], None]
DEVICES = ("auto", "cpu", "cuda", "mps")


# Each shift is one more pass over the whole song (the paper averaged 10).
MAX_SHIFTS = 100
# Segments overlapping by a fraction f run the network 1 / (1 - f) times over each sample: 10 times at this bound.
MAX_OVERLAP = 0.9
# Segments run together in one batch (memory grows with them; beyond a few, nothing gets faster).
MAX_SEGMENTS_PER_BATCH = 64
DEFAULT_OVERLAP = 0.25  # demucs' overlap between segments


@dataclass(frozen=True)
class SeparationOptions:
    """How to cut and average; ``segment`` in seconds (None: the model's own segment length), ``overlap`` a
    fraction of it (None: the model's own: demucs' 0.25, an MSST model's ``1 - 1 / num_overlap``).

    Every value that sizes the work is bounded here, before any work: a refusal names the setting and its range.
    """

    segment: float | None = None
    overlap: float | None = None
    shifts: int = 0
    seed: int | None = None
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.segment is not None and not (math.isfinite(self.segment) and self.segment > 0):
            raise SettingError("segment", self.segment, "must be a finite, positive number of seconds")
        if self.overlap is not None and not 0 <= self.overlap <= MAX_OVERLAP:
            raise SettingError("overlap", self.overlap, f"use 0 to {MAX_OVERLAP:g} (at {MAX_OVERLAP:g} the network "
                               f"already runs {1 / (1 - MAX_OVERLAP):.0f} times over every sample)")
        if not 0 <= self.shifts <= MAX_SHIFTS:
            raise SettingError("shifts", self.shifts, f"use 0 to {MAX_SHIFTS} (each shift is one more pass over the "
                               "song; the paper used 10)")
        if not 1 <= self.batch_size <= MAX_SEGMENTS_PER_BATCH:
            raise SettingError("segments_per_batch", self.batch_size, f"use 1 to {MAX_SEGMENTS_PER_BATCH}")


# The --segment range: below 1 s the segments' edges dominate (much slower, and worse stems); above a minute a
# segment needs gigabytes of memory for no gain (:data:`~ugosa_cli.models.family.MAX_SEGMENT_SECONDS`).
MIN_SEGMENT_SECONDS = 1.0


def segment_samples(model: SeparationModel, options: SeparationOptions) -> int:
    """The segment length a separation runs with: ``options.segment`` or the model's own, in samples."""
    segment = int(round(options.segment * model.samplerate)) if options.segment else model.segment_length
    return max(segment, model.min_length)


def check_segment(model: SeparationModel, segment: float | None) -> None:
    """Refuse a segment length (seconds; None: the model's own) outside what ``model`` separates well with:
    at least :data:`MIN_SEGMENT_SECONDS` and the model's shortest input, at most :data:`MAX_SEGMENT_SECONDS`."""
    if segment is None:
        return
    low = max(MIN_SEGMENT_SECONDS, model.min_length / model.samplerate)
    high = MAX_SEGMENT_SECONDS
    if model.max_segment_length is not None:
        high = min(high, model.max_segment_length / model.samplerate)
        low = min(low, high)
    if not (math.isfinite(segment) and low <= segment <= high):
        default = model.segment_length / model.samplerate
        limit = " and the model takes no longer segment" if high < MAX_SEGMENT_SECONDS else ""
        raise SettingError("segment", segment, f"use {low:g} to {high:g} seconds (this model's default is "
                           f"{default:g} s{limit})")


def check_options(model: SeparationModel, options: SeparationOptions) -> None:
    """Refuse options ``model`` cannot separate with: a segment length out of its range (:func:`check_segment`),
    shifts with an MSST model (msst's ``demix`` has none)."""
    check_segment(model, options.segment)
    if model.fade_chunking is not None and options.shifts:
        raise SettingError("shifts", options.shifts, "BS-RoFormer, Mel-Band RoFormer and SCNet models separate "
                           "without shifts, as msst does; leave it out")


def segment_stride(model: SeparationModel, options: SeparationOptions) -> int:
    """Samples from one segment's start to the next's: ``(1 - overlap)`` of a segment, or for an MSST model
    without an explicit overlap, its chunk over ``inference.num_overlap`` (as msst's ``demix``)."""
    segment = segment_samples(model, options)
    if options.overlap is None and model.fade_chunking is not None:
        return max(1, segment // model.fade_chunking.overlaps)
    overlap = DEFAULT_OVERLAP if options.overlap is None else options.overlap
    return max(1, int((1 - overlap) * segment))


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
    return list(range(0, length, max(1, int((1 - overlap) * segment))))


def fade_window(segment: int, fade_in: bool, fade_out: bool) -> Tensor:
    """msst's chunk weights: 1, with linear ramps over the first and last tenth of the chunk."""
    fade = segment // 10
    window = torch.ones(segment)
    if fade > 0:
        if fade_out:
            window[-fade:] = torch.linspace(1, 0, fade)
        if fade_in:
            window[:fade] = torch.linspace(0, 1, fade)
    return window


def msst_fades(index: int, count: int, batch: int) -> tuple[bool, bool]:
    """(fade-in, fade-out) of chunk ``index`` of ``count``, as msst's ``demix`` decides them for batches of
    ``batch`` chunks: no fade-in when the chunk's batch ends with the first chunk, else no fade-out when it
    ends with the last."""
    last = min((index // batch + 1) * batch, count) - 1
    if last == 0:
        return False, True
    return True, last != count - 1


def fade_border(frames: int, segment: int, stride: int) -> int:
    """Samples msst reflects at each end of a song of ``frames`` before cutting it in chunks (0 when the
    song is no longer than twice that)."""
    border = segment - stride
    return border if border > 0 and frames > 2 * border else 0


class _Moments:
    """Mean and (unbiased) standard deviation of a signal given block by block, accumulated in float64."""

    def __init__(self) -> None:
        self.count = 0
        self._sum = 0.0
        self._squares = 0.0

    def add(self, values: np.ndarray) -> None:
        values = values.astype(np.float64, copy=False)
        self.count += values.size
        self._sum += float(values.sum())
        self._squares += float(np.dot(values, values))

    def mean_std(self) -> tuple[float, float]:
        """``(mean, std)``; std is 1 for a silent or one-sample signal (nothing to scale)."""
        mean = self._sum / max(self.count, 1)
        variance = (self._squares - self.count * mean * mean) / max(self.count - 1, 1)
        std = float(np.sqrt(max(variance, 0.0)))
        return mean, std if std > 0 and np.isfinite(std) else 1.0


def input_normalisation(model: SeparationModel, moments: _Moments) -> tuple[float, float]:
    """(mean, std) the network's input is normalised with: the mono downmix's, or (0, 1) for a network that
    takes the mixture as it is."""
    return moments.mean_std() if model.normalises_input else (0.0, 1.0)


def _reflected(mixture: _TensorMixture | _StreamedMixture, frames: int, start: int, length: int) -> Tensor:
    """Song samples ``start`` to ``start + length``, reflected at the song's ends where they reach past them
    (by less than the song's length)."""
    if start >= 0 and start + length <= frames:
        return mixture.read(start, start + length)
    positions = np.abs(np.arange(start, start + length))
    positions = np.where(positions >= frames, 2 * (frames - 1) - positions, positions)
    low = int(positions.min())
    inside = mixture.read(low, int(positions.max()) + 1)
    return inside[:, torch.from_numpy(positions - low).to(inside.device)]


class _TensorMixture:
    """A whole mixture (channels, frames) already on the device."""

    def __init__(self, mix: Tensor) -> None:
        self.mix = mix

    def read(self, begin: int, end: int) -> Tensor:
        return self.mix[:, begin:end]


class _StreamedMixture:
    """A mixture arriving as consecutive (channels, n) blocks; only the part still needed is kept.

    Reads come in the order of the segments' starts; a read may reach back up to ``lookback`` samples before
    the latest earlier read's start (a short last segment padded with the song around it), no further.
    """

    def __init__(self, blocks: Iterator[np.ndarray], channels: int, device: torch.device, lookback: int = 0) -> None:
        self._blocks = blocks
        self._device = device
        self._lookback = lookback
        self._buffer = np.zeros((channels, 0), np.float32)
        self._start = 0  # song position of the buffer's first sample

    def read(self, begin: int, end: int) -> Tensor:
        if begin < self._start:
            raise ValueError(f"read from {begin} after the stream dropped everything before {self._start}")
        keep = max(begin - self._lookback, self._start)
        if keep > self._start:
            self._buffer = self._buffer[:, keep - self._start :]
            self._start = keep
        pieces = [self._buffer]
        have = self._start + self._buffer.shape[1]
        while have < end:
            block = next(self._blocks, None)
            if block is None:
                break
            pieces.append(block)
            have += block.shape[1]
        if len(pieces) > 1:
            self._buffer = np.concatenate(pieces, axis=1)
        chunk = self._buffer[:, begin - self._start : end - self._start]
        return torch.from_numpy(np.ascontiguousarray(chunk)).to(self._device)


@dataclass(frozen=True)
class _Segment:
    """One model call's place: ``offset`` within a view that starts ``view_start`` samples into the song."""

    view_start: int
    view_length: int
    offsets: list[int]  # every segment start of the view (shared)
    offset: int
    length: int
    scale: float
    member: int = 0  # the bag member the view runs (0 for a single model)
    index: int = 0  # its place among the view's segments

    @property
    def start(self) -> int:
        return self.view_start + self.offset


class _Segmenter:
    """Overlap-add of model outputs over the segments of one song, streamed from input to output.

    Segments of all views are run in the order of their start in the song. Each segment's output goes
    into a rolling accumulator weighted by its triangle over the summed triangles where it lies (the same
    weighted average as summing everything and dividing at the end); once no later segment can touch a
    stretch of the song, that stretch is final and is handed on, so memory does not grow with the song.
    For a :class:`ModelBag` every member runs its own views and adds its share of each source.
    """

    def __init__(self, model: SeparationModel, segment: int, stride: int, batch_size: int) -> None:
        self.model = model
        self.members = [model.member(k) for k in range(len(model.members))] if isinstance(model, ModelBag) else [model]
        self.shares = model.shares if isinstance(model, ModelBag) else None  # (members, sources)
        self.segment = segment
        self.stride = stride
        self.batch_size = batch_size
        self.fades = model.fade_chunking
        self.weight: Tensor | None = None
        self._windows: dict[tuple[bool, bool], Tensor] = {}

    def plan(self, views: list[tuple[int, int, int]], scale: float) -> list[_Segment]:
        """Every segment of every view ``(member, start, length)``, ordered by where it starts in the song."""
        segments = []
        for member, view_start, view_length in views:
            offsets = list(range(0, view_length, self.stride))
            for index, offset in enumerate(offsets):
                length = min(self.segment, view_length - offset)
                segments.append(_Segment(view_start, view_length, offsets, offset, length, scale, member, index))
        return sorted(segments, key=lambda s: s.start)

    def views(self, member: int, frames: int) -> tuple[int, int, int]:
        """The view of a whole song of ``frames`` (no shift): itself, or for MSST chunking the song with
        its reflected borders."""
        border = fade_border(frames, self.segment, self.stride) if self.fades is not None else 0
        return member, -border, frames + 2 * border

    @torch.inference_mode()  # entered on each resume, left at each yield: the caller's mode is untouched
    def run(
        self,
        mixture: _TensorMixture | _StreamedMixture,
        frames: int,
        segments: list[_Segment],
        normalise: tuple[float, float],
        tick: Callable[[int], None],
    ) -> Iterator[Tensor]:
        """Yield the song's stems (sources, channels, n) in consecutive final stretches, ``frames`` in all.

        ``normalise`` = (mean, std): the model sees ``(mix - mean) / std``; its output is scaled back and each stem
        gets its share of the mean (:func:`~ugosa_cli.models.family.stems_from_normalised`).
        """
        device = next(self.model.parameters()).device
        if self.weight is None or self.weight.device != device:
            self.weight = triangle_weight(self.segment).to(device)
        shares = None if self.shares is None else self.shares.to(device)[:, :, None, None]
        mean, std = normalise
        shape = (len(self.model.sources), self.model.audio_channels)
        accumulator = torch.zeros(*shape, 0, device=device)
        done = 0  # song position of the accumulator's first sample: everything before it was yielded
        for first, group in self._batches(segments):
            chunks = [self._chunk(mixture, frames, s, mean, std) for s in group]
            result = self._model_forward(torch.stack(chunks), group[0].length, group[0].member)
            if not bool(result.isfinite().all()):  # finite weights can still overflow: never pass NaN on to a file
                raise InputError(
                    f"the model's output is NaN or infinite at {group[0].start / self.model.samplerate:.1f} s of the "
                    "song: its weights are damaged or far out of range; use another model file"
                )
            end = min(max(s.start + s.length for s in group), frames)
            if end - done > accumulator.shape[-1]:
                grow = torch.zeros(*shape, end - done - accumulator.shape[-1], device=device)
                accumulator = torch.cat([accumulator, grow], dim=-1)
            for s, chunk_out in zip(group, result):
                begin, stop = max(s.start, 0), min(s.start + s.length, frames)
                if begin < stop:
                    share = self._share(s)
                    inside = slice(begin - s.start, stop - s.start)
                    part = chunk_out[..., inside] if shares is None else chunk_out[..., inside] * shares[s.member]
                    accumulator[..., begin - done : stop - done].addcmul_(part, share[inside])
            tick(len(group))
            following = first + len(group)
            final = frames if following == len(segments) else min(max(segments[following].start, 0), frames)
            if final > done:
                ready, accumulator = accumulator[..., : final - done], accumulator[..., final - done :]
                yield stems_from_normalised(ready, mean, std) if (mean, std) != (0.0, 1.0) else ready
                done = final

    def _chunk(self, mixture: _TensorMixture | _StreamedMixture, frames: int, s: _Segment, mean: float, std: float) -> Tensor:
        """The normalised mixture the network runs on for a segment, zero outside the song: the segment
        itself, or with centred padding the :meth:`SeparationModel.valid_length` samples around it; for MSST
        chunking, reflected outside the song and completed to a chunk."""
        start, length = s.start, s.length
        if self.fades is not None:
            inside = (_reflected(mixture, frames, start, length) - mean) / std
            if length < self.segment:
                mode = "reflect" if length > self.segment // 2 else "constant"
                inside = torch.nn.functional.pad(inside, (0, self.segment - length), mode=mode)
            return inside
        if self.model.centred_padding:
            valid = self.model.valid_length(length, self.segment)
            start, length = start - (valid - length) // 2, valid
        begin, end = max(start, 0), min(start + length, frames)
        if begin >= end:
            return torch.zeros(self.model.audio_channels, length, device=next(self.model.parameters()).device)
        inside = (mixture.read(begin, end) - mean) / std
        return torch.nn.functional.pad(inside, (begin - start, start + length - end))

    def _weight(self, view_length: int, offsets: list[int], index: int) -> Tensor:
        """The weights of a view's segment ``index`` (its length): a triangle, or msst's faded window."""
        assert self.weight is not None
        length = min(self.segment, view_length - offsets[index])
        if self.fades is None:
            return self.weight[:length]
        fades = msst_fades(index, len(offsets), self.fades.batch)
        if fades not in self._windows or self._windows[fades].device != self.weight.device:
            self._windows[fades] = fade_window(self.segment, *fades).to(self.weight.device)
        return self._windows[fades][:length]

    def _share(self, s: _Segment) -> Tensor:
        """A segment's weights over the summed weights of all segments of its view where it lies (times its
        view's share of the result); 0 where they sum to 0 (msst's faded ends)."""
        assert self.weight is not None
        total = torch.zeros(s.length, device=self.weight.device)
        first = bisect.bisect_left(s.offsets, s.offset - self.segment + 1)
        last = bisect.bisect_left(s.offsets, s.offset + s.length)
        for index in range(first, last):
            other = s.offsets[index]
            weight = self._weight(s.view_length, s.offsets, index)
            begin, end = max(other, s.offset), min(other + weight.shape[0], s.offset + s.length)
            total[begin - s.offset : end - s.offset] += weight[begin - other : end - other]
        own = self._weight(s.view_length, s.offsets, s.index) * s.scale
        return torch.where(total > 0, own / total.clamp(min=1e-30), torch.zeros_like(own))

    def _model_forward(self, batch: Tensor, length: int, member: int) -> Tensor:
        """A (member's) network on a batch of equal chunks (as :meth:`_chunk` makes them) -> stems of
        ``length`` samples: the centre of a chunk padded with context, or the start of one padded after it."""
        network = self.members[member]
        if self.fades is not None:  # every chunk was completed to the chunk size
            return network(batch)
        if self.model.centred_padding:
            trim = (batch.shape[-1] - length) // 2
            return network(batch)[..., trim : trim + length]
        valid = self.model.valid_length(length, self.segment)
        if valid == length:
            return network(batch)
        padded = torch.nn.functional.pad(batch, (0, valid - length))
        return network(padded)[..., :length]

    def _batches(self, segments: list[_Segment]) -> Iterator[tuple[int, list[_Segment]]]:
        """Runs of consecutive full-length segments of one member, ``batch_size`` at most; shorter ones alone."""
        index = 0
        while index < len(segments):
            group = [segments[index]]
            while (
                len(group) < self.batch_size
                and (group[0].length == self.segment or self.fades is not None)
                and index + len(group) < len(segments)
                and (segments[index + len(group)].length == self.segment or self.fades is not None)
                and segments[index + len(group)].member == group[0].member
            ):
                group.append(segments[index + len(group)])
            yield index, group
            index += len(group)


def _stream_stems(
    model: SeparationModel,
    mixture: _TensorMixture | _StreamedMixture,
    frames: int,
    normalise: tuple[float, float],
    options: SeparationOptions,
    progress: ProgressCallback | None,
) -> Iterator[Tensor]:
    """Stems (sources, channels, n) of a mixture of ``frames`` samples at the model's rate, stretch by stretch."""
    if model.fade_chunking is not None and options.shifts:
        check_options(model, options)  # refused: msst has no shifts
    segmenter = _Segmenter(model, segment_samples(model, options), segment_stride(model, options), options.batch_size)
    rng = random.Random(options.seed)
    max_shift = int(0.5 * model.samplerate)
    views: list[tuple[int, int, int]] = []
    for member in range(len(segmenter.members)):  # members draw their shifts in turn, as demucs' bags do
        for _ in range(options.shifts):
            shift = rng.randint(0, max_shift)
            views.append((member, shift - max_shift, frames + max_shift - shift))
            forwards = len(range(0, frames + max_shift - shift, segmenter.stride))
            for _ in range(forwards * model.random_draws_per_forward):  # what the reference's forwards draw
                rng.randrange(1)
        if not options.shifts:
            views.append(segmenter.views(member, frames))
    segments = segmenter.plan(views, 1 / max(1, options.shifts))
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if progress:
            progress(done, len(segments))

    if progress:
        progress(0, len(segments))
    yield from segmenter.run(mixture, frames, segments, normalise, tick)


def separate_tensor(
    model: SeparationModel,
    mix: Tensor,
    options: SeparationOptions = SeparationOptions(),
    progress: ProgressCallback | None = None,
) -> Tensor:
    """Separate a normalised mixture (channels, time) already on the model's device -> (sources, channels, time)."""
    stretches = _stream_stems(model, _TensorMixture(mix), mix.shape[-1], (0.0, 1.0), options, progress)
    return torch.cat(list(stretches), dim=-1)


def separate_array(
    model: SeparationModel,
    mix: np.ndarray,
    options: SeparationOptions = SeparationOptions(),
    device: torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Separate a mixture (model channels, frames) at the model's rate -> stems (sources, channels, frames).

    Besides the mixture, only the stems are song-sized: segments are normalised, separated and copied
    out one stretch at a time.
    """
    device = device or torch.device("cpu")
    mix = np.ascontiguousarray(mix, dtype=np.float32)
    moments = _Moments()
    moments.add(mix.mean(axis=0))
    model = model.to(device).eval()
    stems = np.empty((len(model.sources), *mix.shape), dtype=np.float32)
    position = 0
    wav = torch.from_numpy(mix).to(device)
    normalise = input_normalisation(model, moments)
    for stretch in _stream_stems(model, _TensorMixture(wav), mix.shape[-1], normalise, options, progress):
        stems[..., position : position + stretch.shape[-1]] = stretch.cpu().numpy()
        position += stretch.shape[-1]
    return stems


class AudioBlocks(Protocol):
    """Audio that can be read from the start in blocks, any number of times (:class:`AudioFile`, :class:`Audio`)."""

    @property
    def source(self) -> str: ...
    @property
    def samplerate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def frames(self) -> int: ...

    def blocks(self, size: int = ...) -> Iterator[np.ndarray]: ...


def separate_blocks(
    model: SeparationModel,
    audio: AudioBlocks,
    options: SeparationOptions = SeparationOptions(),
    device: torch.device | None = None,
    progress: ProgressCallback | None = None,
    *,
    downmix: bool = False,
) -> Iterator[np.ndarray]:
    """Stems (sources, channels, n) at the input's rate and channel count, in consecutive blocks.

    The input is read twice, block by block: once for the loudness statistics the model's input is
    normalised with, once to separate it. Memory does not grow with the song's length; the blocks add
    up to exactly the input's frames.
    """
    device = device or torch.device("cpu")
    model = model.to(device).eval()

    input_frames = 0

    def model_rate_blocks() -> Iterator[np.ndarray]:
        nonlocal input_frames
        input_frames = 0
        to_model = StreamResampler(audio.samplerate, model.samplerate, model.audio_channels)
        for block in audio.blocks():
            input_frames += block.shape[1]
            yield to_model(match_channels(block, model.audio_channels, downmix=downmix, label=audio.source))
        yield to_model.flush()

    moments = _Moments()
    for block in model_rate_blocks():
        moments.add(block.mean(axis=0))
    frames, expected = moments.count, input_frames
    # A centred chunk reaches back at most half a segment before its own start, an MSST chunk reflected at the
    # song's end less than a chunk.
    lookback = model.valid_length(1, segment_samples(model, options)) if model.centred_padding else 0
    if model.fade_chunking is not None:
        lookback = segment_samples(model, options)
    mixture = _StreamedMixture(model_rate_blocks(), model.audio_channels, device, lookback)
    out_channels = min(audio.channels, 2)
    sources = len(model.sources)
    from_model = StreamResampler(model.samplerate, audio.samplerate, sources * out_channels)

    def at_input_rate(stretch: np.ndarray, *, last: bool = False) -> np.ndarray:
        if out_channels == 1 and stretch.shape[1] > 1:
            stretch = stretch.mean(axis=1, keepdims=True)
        elif stretch.shape[1] == 1 and out_channels > 1:
            stretch = np.repeat(stretch, out_channels, axis=1)
        flat = from_model(stretch.reshape(sources * out_channels, -1), last=last)
        return flat.reshape(sources, out_channels, -1)

    written = 0
    for stretch in _stream_stems(model, mixture, frames, input_normalisation(model, moments), options, progress):
        block = at_input_rate(stretch.cpu().numpy())[..., : expected - written]
        written += block.shape[-1]
        if block.shape[-1]:
            yield block
    tail = at_input_rate(np.zeros((sources, model.audio_channels, 0), np.float32), last=True)
    tail = fit_length(tail[..., : expected - written], expected - written)
    if tail.shape[-1]:
        yield tail


def mean_blocks(first: Iterable[np.ndarray], second: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The sample-wise mean of two streams of blocks (..., n) of the same song, whatever their block sizes."""
    blocks, other = iter(first), BlockReader(second)
    for block in blocks:
        partner = other.take(block.shape[-1])
        matched = 0 if partner is None else partner.shape[-1]
        if matched < block.shape[-1]:
            short = block.shape[-1] - matched + sum(rest.shape[-1] for rest in blocks)
            raise ValueError(f"the streams differ in length by {short} samples")
        yield (block + partner) * np.float32(0.5)
    if other.remaining():
        raise ValueError(f"the streams differ in length by {other.remaining()} samples")


def stem_channel_blocks(audio: AudioBlocks, *, downmix: bool = False) -> Iterator[np.ndarray]:
    """The input block by block in the channels :func:`separate_blocks` gives its stems (mono or stereo)."""
    channels = min(audio.channels, 2)
    for block in audio.blocks():
        yield match_channels(block, channels, downmix=downmix, label=audio.source)


def separate_audio(
    model: SeparationModel,
    audio: Audio,
    options: SeparationOptions = SeparationOptions(),
    device: torch.device | None = None,
    progress: ProgressCallback | None = None,
    *,
    downmix: bool = False,
) -> np.ndarray:
    """Stems (sources, channels, frames) at the input's rate, channel count and length, as one array."""
    blocks = separate_blocks(model, audio, options, device, progress, downmix=downmix)
    return np.concatenate(list(blocks), axis=-1)

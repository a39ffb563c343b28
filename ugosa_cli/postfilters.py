"""Post-filters: what the labels do to the separated stems on their way to the files.

:class:`Gate` silences each stem outside its labelled regions (with short fades); :class:`Resplit` is a
label-constrained Wiener filter that shares what the stems labelled active leave unexplained of the mixture
among them (or, in its other modes, the whole mixture, or what the resting stems hold). Both stream:
they take a song's stem blocks (sources, channels, n) in order and give back blocks of the same song,
equal to filtering the whole song at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import numpy as np

from ugosa_cli.audio import BlockReader
from ugosa_cli.labels import Labels, activation_rows, guard_silences

_FRAMES_PER_BATCH = 128  # STFT frames the resplit filter works on at once, to bound its memory


class Gate:
    """Multiplies each stem by its labelled activations, smoothed into short linear fades (no clicks).

    The 0/1 activations are averaged over ``fade`` seconds around each sample; blocks are gated where
    they lie in the song, so a song is gated piece by piece exactly as it would be whole.
    """

    def __init__(self, labels: Labels, samplerate: int, frames: int, fade: float = 0.01) -> None:
        self.labels = labels
        self.samplerate = samplerate
        self.frames = frames
        self.width = max(1, int(round(fade * samplerate)))

    def __call__(self, stems: np.ndarray, start: int) -> np.ndarray:
        """Gate a block (sources, channels, n) that begins ``start`` samples into the song."""
        count = stems.shape[-1]
        before, after = self.width // 2, (self.width - 1) // 2
        lo, hi = start - before, start + count + after
        rows = activation_rows(self.labels, self.samplerate, max(lo, 0), min(hi, self.frames), self.frames)
        padded = np.pad(rows.astype(np.float64), ((0, 0), (max(-lo, 0) + 1, max(hi - self.frames, 0))))
        summed = np.cumsum(padded, axis=1)
        smooth = (summed[:, self.width :] - summed[:, : -self.width]) / self.width
        return (stems * smooth[:, None, :count].astype(np.float32)).astype(np.float32, copy=False)

    def stream(self, blocks: Iterable[np.ndarray], guide: Iterable[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Gate consecutive blocks of a song, from its start (``guide`` is not used: gating needs none)."""
        position = 0
        for block in blocks:
            yield self(block, position)
            position += block.shape[-1]


RESPLIT_MODES = ("unexplained", "mix", "stems")


class Resplit:
    """A label-constrained Wiener filter: the mixture, or what the resting stems hold, re-split among the stems
    labelled active.

    In each STFT frame (Hann window of about ``window`` seconds, a power of two in samples, hop a quarter
    of it) the sources labelled active at the frame's centre share in proportion to their guide power
    there (where no source is labelled active, all of them do), and a source labelled silent gets nothing,
    so it is exactly silent wherever it is labelled silent for more than a window. What is shared:

    - ``mode="unexplained"``: what the stems labelled active leave unexplained of the mixture (what the
      resting stems hold, and what no stem holds); the stems labelled active keep their own spectrum and gain
      their share of it. The stems then add up to the mixture, and a stem the model got right stays as it is;
    - ``mode="mix"``: the mixture's spectrum. The stems then add up to the mixture; the guide's power alone
      decides who gets what, so good stems are re-estimated as well (a Wiener filter of the mixture);
    - ``mode="stems"``: only what the stems labelled silent hold; the stems labelled active keep their own
      spectrum and gain their share of it. Where no source is labelled silent the stems pass unchanged.

    ``guide`` (blocks of the same song, any sizes) gives the power; without it the stems guide themselves.
    ``mixture`` yields the song as the stems' channels, in blocks of any size. Stem blocks come out about a
    window late and in other sizes, equal to filtering the whole song at once.
    """

    def __init__(
        self, labels: Labels, samplerate: int, frames: int, mixture: Iterable[np.ndarray], window: float = 0.046,
        mode: str = "unexplained",
    ) -> None:
        if mode not in RESPLIT_MODES:
            raise ValueError(f"resplit mode {mode!r}: use one of {', '.join(RESPLIT_MODES)}")
        self.labels = labels
        self.samplerate = samplerate
        self.frames = frames
        self.mode = mode
        self.mixture = BlockReader(mixture)
        self.size = 1 << max(4, round(np.log2(window * samplerate)))
        self.hop = self.size // 4
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.size) / self.size)).astype(np.float32)
        self.envelope = (self.window**2).reshape(-1, self.hop).sum(axis=0)  # summed over the frames on a sample

    def stream(self, blocks: Iterable[np.ndarray], guide: Iterable[np.ndarray] | None = None) -> Iterator[np.ndarray]:
        """Filter consecutive stem blocks (sources, channels, n) of the song, from its start."""
        blocks = iter(blocks)
        first = next(blocks, None)
        if first is None:
            return
        guides = None if guide is None else BlockReader(guide)
        sources, channels = first.shape[:2]
        lead = self.size - self.hop  # frames start every hop from -lead, so each sample is in size/hop frames
        origin = -lead
        stems = np.zeros((sources, channels, lead), np.float32)
        power = np.zeros((sources, channels, lead), np.float32) if guides is not None else None
        mix = np.zeros((channels, lead), np.float32)
        carry = np.zeros((sources, channels, lead), np.float32)
        for block in itertools.chain([first], blocks):
            stems = np.concatenate([stems, block], axis=-1)
            if guides is not None and power is not None:
                power = np.concatenate([power, self._guide(guides, block.shape)], axis=-1)
            mix = np.concatenate([mix, self._mixture(block.shape[-1], channels)], axis=-1)
            done, carry = self._frames(stems, power, mix, origin, carry)
            yield from self._emit(done, origin)
            count = done.shape[-1]
            stems, mix, origin = stems[..., count:], mix[..., count:], origin + count
            power = None if power is None else power[..., count:]
        if guides is not None and guides.remaining():
            raise ValueError(f"the guide is {guides.remaining()} samples longer than the stems")
        pad = ((0, 0), (0, 0), (0, self.size))
        done, _ = self._frames(np.pad(stems, pad), None if power is None else np.pad(power, pad),
                               np.pad(mix, pad[1:]), origin, carry)
        yield from self._emit(done, origin)

    @staticmethod
    def _guide(guides: BlockReader, shape: tuple[int, ...]) -> np.ndarray:
        piece = guides.take(shape[-1])
        have = 0 if piece is None else piece.shape[-1]
        if piece is None or have < shape[-1]:
            raise ValueError(f"the guide ended {shape[-1] - have} samples before the stems")
        if piece.shape[:-1] != shape[:-1]:
            raise ValueError(f"the guide has shape {piece.shape[:-1]}, the stems {shape[:-1]}")
        return np.asarray(piece, np.float32)

    def _mixture(self, count: int, channels: int) -> np.ndarray:
        """The next ``count`` samples of the mixture."""
        piece = self.mixture.take(count)
        have = 0 if piece is None else piece.shape[-1]
        if piece is None or have < count:
            raise ValueError(f"the mixture ended {count - have} samples before the stems")
        if piece.shape[0] != channels:
            raise ValueError(f"the mixture has {piece.shape[0]} channels, the stems {channels}")
        return np.asarray(piece, np.float32)

    def _frames(
        self, stems: np.ndarray, guide: np.ndarray | None, mix: np.ndarray, origin: int, carry: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filter every whole frame in buffers that begin at sample ``origin``; ``carry`` holds what earlier
        frames added to the first ``size - hop`` samples. Returns the finished samples (overlap-added, not yet
        divided by the window envelope) and the new carry."""
        count = (stems.shape[-1] - self.size) // self.hop + 1 if stems.shape[-1] >= self.size else 0
        lead = self.size - self.hop
        added = np.zeros((*stems.shape[:2], count * self.hop + lead), np.float32)
        added[..., :lead] = carry
        for first in range(0, count, _FRAMES_PER_BATCH):
            frames = min(_FRAMES_PER_BATCH, count - first)
            span = slice(first * self.hop, (first + frames - 1) * self.hop + self.size)
            filtered = self._filter(stems[..., span], None if guide is None else guide[..., span], mix[..., span],
                                    origin + span.start, frames)
            for part in range(self.size // self.hop):
                segment = filtered[..., part * self.hop : (part + 1) * self.hop].reshape(*stems.shape[:2], -1)
                start = span.start + part * self.hop
                added[..., start : start + frames * self.hop] += segment
        return added[..., : count * self.hop], added[..., count * self.hop :]

    def _filter(self, stems: np.ndarray, guide: np.ndarray | None, mix: np.ndarray, start: int, count: int) -> np.ndarray:
        """Windowed, filtered frames (sources, channels, count, size) of buffers that begin at sample ``start``."""
        def spectra(signal: np.ndarray) -> np.ndarray:
            framed = np.lib.stride_tricks.sliding_window_view(signal, self.size, axis=-1)[..., :: self.hop, :]
            return np.fft.rfft(framed[..., :count, :] * self.window, axis=-1)

        own = spectra(stems)
        guided = own if guide is None else spectra(guide)
        # Powers in float64: squares of float32 spectra overflow for loud signals (a float file far above full scale).
        power = np.mean(np.square(np.abs(guided), dtype=np.float64), axis=1)  # (sources, count, bins)
        centres = np.clip(start + self.size // 2 + self.hop * np.arange(count), 0, self.frames - 1)
        rows = activation_rows(self.labels, self.samplerate, int(centres[0]), int(centres[-1]) + 1, self.frames)
        active = rows[:, centres - centres[0]] > 0.5
        active |= ~active.any(axis=0, keepdims=True)
        weights = np.where(active[..., None], power + 1e-20, 0.0)
        shares = (weights / weights.sum(axis=0, keepdims=True)).astype(np.float32)
        if self.mode == "mix":
            split = shares[:, None] * spectra(mix)[None]
        else:
            kept = np.where(active[:, None, :, None], own, 0)
            if self.mode == "stems":
                shared = np.where(active[:, None, :, None], 0, own).sum(axis=0)  # (channels, count, bins)
            else:
                shared = spectra(mix) - kept.sum(axis=0)
            split = kept + shares[:, None] * shared[None]
        return np.fft.irfft(split, n=self.size, axis=-1).astype(np.float32) * self.window

    def _emit(self, added: np.ndarray, origin: int) -> Iterator[np.ndarray]:
        """The part of finished samples beginning at ``origin`` that lies inside the song, normalised."""
        first, stop = max(0, -origin), min(added.shape[-1], self.frames - origin)
        if first < stop:
            yield added[..., first:stop] / np.tile(self.envelope, added.shape[-1] // self.hop)[first:stop]


def resplit_array(
    stems: np.ndarray, mix: np.ndarray, labels: Labels, samplerate: int, *, guide: np.ndarray | None = None,
    mode: str = "unexplained",
) -> np.ndarray:
    """:class:`Resplit` applied to a whole song in memory: stems and guide (sources, channels, frames), mix
    (channels, frames)."""
    resplit = Resplit(labels, samplerate, mix.shape[-1], [mix], mode=mode)
    return np.concatenate(list(resplit.stream([stems], None if guide is None else [guide])), axis=-1)


class StemFilter(Protocol):
    """What the labels do to the stems on their way to the files: :class:`Gate` or :class:`Resplit`."""

    def stream(self, blocks: Iterable[np.ndarray], guide: Iterable[np.ndarray] | None = None) -> Iterator[np.ndarray]: ...


POST_FILTERS = ("gate", "resplit")


def label_filter(
    kind: str, labels: Labels, samplerate: int, frames: int, mixture: Callable[[], Iterable[np.ndarray]], *,
    mode: str = "unexplained", guard: float = 0.0,
) -> StemFilter:
    """The post-filter ``kind`` (:data:`POST_FILTERS`) of a song of ``frames`` samples, its labels' silences
    shortened by ``guard`` seconds at each border (:func:`~ugosa_cli.labels.guard_silences`); ``mixture`` gives
    the song's blocks (in the stems' channels) when the resplit needs them, ``mode`` is the resplit's."""
    if kind not in POST_FILTERS:
        raise ValueError(f"post-filter {kind!r}: use one of {', '.join(POST_FILTERS)}")
    guarded = guard_silences(labels, guard)
    if kind == "gate":
        return Gate(guarded, samplerate, frames)
    return Resplit(guarded, samplerate, frames, mixture(), mode=mode)

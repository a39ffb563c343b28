"""Post-filters: what the labels do to the separated stems on their way to the files.

:class:`Gate` silences each stem outside its labelled regions (with short fades); :class:`Resplit` is a
label-constrained Wiener filter that re-splits the mixture among the stems labelled active. Both stream:
they take a song's stem blocks (sources, channels, n) in order and give back blocks of the same song,
equal to filtering the whole song at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Protocol

import numpy as np

from ugosa_cli.audio import BlockReader
from ugosa_cli.labels import Labels, activation_rows

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

    def stream(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Gate consecutive blocks of a song, from its start."""
        position = 0
        for block in blocks:
            yield self(block, position)
            position += block.shape[-1]


class Resplit:
    """A label-constrained Wiener filter: the mixture re-split among the stems labelled active.

    In each STFT frame (Hann window of about ``window`` seconds, a power of two in samples, hop a quarter
    of it) the mixture's spectrum goes to the sources labelled active at the frame's centre, in proportion
    to their estimated power there; where no source is labelled active, to all of them. The stems then add
    up to the mixture, and a source is exactly silent wherever it is labelled silent for more than a window.
    Unlike :class:`Gate`, which drops what leaked into a resting stem, this hands it to the playing ones.

    The stems only guide the split: their power decides who gets what. After adapting, ugosa guides it
    with the mean of the pretrained and the adapted model's stems, which splits better than either alone
    (BENCHMARKS.md). ``mixture`` yields the song as the stems' channels, in blocks of any size. Stem
    blocks come out about a window late and in other sizes, equal to filtering the whole song at once.
    """

    def __init__(
        self, labels: Labels, samplerate: int, frames: int, mixture: Iterable[np.ndarray], window: float = 0.046
    ) -> None:
        self.labels = labels
        self.samplerate = samplerate
        self.frames = frames
        self.mixture = BlockReader(mixture)
        self.size = 1 << max(4, round(np.log2(window * samplerate)))
        self.hop = self.size // 4
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(self.size) / self.size)).astype(np.float32)
        self.envelope = (self.window**2).reshape(-1, self.hop).sum(axis=0)  # summed over the frames on a sample

    def stream(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Filter consecutive stem blocks (sources, channels, n) of the song, from its start."""
        blocks = iter(blocks)
        first = next(blocks, None)
        if first is None:
            return
        sources, channels = first.shape[:2]
        lead = self.size - self.hop  # frames start every hop from -lead, so each sample is in size/hop frames
        origin = -lead
        stems = np.zeros((sources, channels, lead), np.float32)
        mix = np.zeros((channels, lead), np.float32)
        carry = np.zeros((sources, channels, lead), np.float32)
        for block in itertools.chain([first], blocks):
            stems = np.concatenate([stems, block], axis=-1)
            mix = np.concatenate([mix, self._mixture(block.shape[-1], channels)], axis=-1)
            done, carry = self._frames(stems, mix, origin, carry)
            yield from self._emit(done, origin)
            stems, mix, origin = stems[..., done.shape[-1] :], mix[..., done.shape[-1] :], origin + done.shape[-1]
        pad = ((0, 0), (0, 0), (0, self.size))
        done, _ = self._frames(np.pad(stems, pad), np.pad(mix, pad[1:]), origin, carry)
        yield from self._emit(done, origin)

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
        self, stems: np.ndarray, mix: np.ndarray, origin: int, carry: np.ndarray
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
            filtered = self._filter(stems[..., span], mix[..., span], origin + span.start, frames)
            for part in range(self.size // self.hop):
                segment = filtered[..., part * self.hop : (part + 1) * self.hop].reshape(*stems.shape[:2], -1)
                start = span.start + part * self.hop
                added[..., start : start + frames * self.hop] += segment
        return added[..., : count * self.hop], added[..., count * self.hop :]

    def _filter(self, stems: np.ndarray, mix: np.ndarray, start: int, count: int) -> np.ndarray:
        """Windowed, filtered frames (sources, channels, count, size) of buffers that begin at sample ``start``."""
        def spectra(signal: np.ndarray) -> np.ndarray:
            framed = np.lib.stride_tricks.sliding_window_view(signal, self.size, axis=-1)[..., :: self.hop, :]
            return np.fft.rfft(framed[..., :count, :] * self.window, axis=-1)

        power = np.mean(np.abs(spectra(stems)) ** 2, axis=1, dtype=np.float64)  # (sources, count, bins)
        centres = np.clip(start + self.size // 2 + self.hop * np.arange(count), 0, self.frames - 1)
        rows = activation_rows(self.labels, self.samplerate, int(centres[0]), int(centres[-1]) + 1, self.frames)
        active = rows[:, centres - centres[0]] > 0.5
        active |= ~active.any(axis=0, keepdims=True)
        weights = np.where(active[..., None], power + 1e-20, 0.0)
        shares = (weights / weights.sum(axis=0, keepdims=True)).astype(np.float32)
        split = shares[:, None] * spectra(mix)[None]
        return np.fft.irfft(split, n=self.size, axis=-1).astype(np.float32) * self.window

    def _emit(self, added: np.ndarray, origin: int) -> Iterator[np.ndarray]:
        """The part of finished samples beginning at ``origin`` that lies inside the song, normalised."""
        first, stop = max(0, -origin), min(added.shape[-1], self.frames - origin)
        if first < stop:
            yield added[..., first:stop] / np.tile(self.envelope, added.shape[-1] // self.hop)[first:stop]


def resplit_array(stems: np.ndarray, mix: np.ndarray, labels: Labels, samplerate: int) -> np.ndarray:
    """:class:`Resplit` applied to a whole song in memory: stems (sources, channels, frames), mix (channels, frames)."""
    return np.concatenate(list(Resplit(labels, samplerate, mix.shape[-1], [mix]).stream([stems])), axis=-1)


class StemFilter(Protocol):
    """What the labels do to the stems on their way to the files: :class:`Gate` or :class:`Resplit`."""

    def stream(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]: ...

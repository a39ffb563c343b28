"""What a person sees: the labels as lanes over the song's waveform, and the report page of one song.

Meters watch streams of blocks as they go by (:meth:`Envelope.tap`, :meth:`Levels.tap`): the mixture's waveform
envelope, and each source's level over time (dB RMS per 100 ms, longer steps for long songs). :func:`lanes_figure`
draws one lane per source (where the labels say it plays) under the waveform, as ``ugosa labels show --plot`` and the
report page show it; :func:`levels_figure` draws a source's level before and after (the pretrained and the final
stems, or the stems given to ``filter`` and the filtered ones) with its labelled rests shaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from ugosa_cli.labels import Labels, format_clock, rests, tick_label, tick_step
from ugosa_cli.plot import Band, Figure, Line, Rect, Text, source_role, text_width

ENVELOPE_COLUMNS = 1000  # columns of the waveform
LEVEL_STEP = 0.1  # seconds per level point ...
MAX_LEVEL_POINTS = 3000  # ... unless the song is longer than this many steps: then the step grows
FLOOR_DB = -100.0  # the level of silence
CHART_DB = (-80.0, 0.0)  # the range a level chart shows
FIGURE_WIDTH = 1000


def _runs(bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a non-decreasing array of bin numbers and where each run of them starts."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(bins)) + 1])
    return bins[starts], starts


class _Meter:
    def add(self, block: np.ndarray) -> None:
        raise NotImplementedError

    def tap(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The blocks, unchanged, each measured on its way."""
        for block in blocks:
            self.add(block)
            yield block


class Envelope(_Meter):
    """The lowest and highest sample (channels averaged) in each of ``columns`` equal parts of a song of
    ``frames`` samples, from its blocks (channels, n) in order."""

    def __init__(self, frames: int, samplerate: int, columns: int = ENVELOPE_COLUMNS) -> None:
        self.frames = max(1, frames)
        self.samplerate = samplerate
        self.columns = max(1, min(columns, self.frames))
        self.lows = np.full(self.columns, np.inf)
        self.highs = np.full(self.columns, -np.inf)
        self.position = 0

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate

    def add(self, block: np.ndarray) -> None:
        mono = np.asarray(block, np.float64).mean(axis=0)
        count = min(mono.shape[-1], self.frames - self.position)
        if count <= 0:
            return
        bins = (np.arange(self.position, self.position + count) * self.columns) // self.frames
        ids, starts = _runs(bins)
        self.lows[ids] = np.minimum(self.lows[ids], np.minimum.reduceat(mono[:count], starts))
        self.highs[ids] = np.maximum(self.highs[ids], np.maximum.reduceat(mono[:count], starts))
        self.position += count

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lows, highs), 0 where nothing was seen."""
        seen = np.isfinite(self.lows)
        return np.where(seen, self.lows, 0.0), np.where(seen, self.highs, 0.0)


class Levels(_Meter):
    """Each source's level over time: mean power (channels averaged) per step of :data:`LEVEL_STEP` seconds, or
    longer so that a song has at most :data:`MAX_LEVEL_POINTS`, from blocks (sources, channels, n) in order."""

    def __init__(self, sources: Sequence[str], samplerate: int, frames: int) -> None:
        self.sources = tuple(sources)
        self.samplerate = samplerate
        self.frames = max(1, frames)
        self.step = max(1, round(LEVEL_STEP * samplerate), math.ceil(self.frames / MAX_LEVEL_POINTS))
        self.points = math.ceil(self.frames / self.step)
        self.energy = np.zeros((len(self.sources), self.points))
        self.counts = np.zeros(self.points)
        self.position = 0

    @property
    def seconds_per_point(self) -> float:
        return self.step / self.samplerate

    def add(self, block: np.ndarray) -> None:
        if block.shape[0] != len(self.sources):
            raise ValueError(f"blocks of {block.shape[0]} sources for levels of {len(self.sources)}")
        count = min(block.shape[-1], self.frames - self.position)
        if count <= 0:
            return
        power = np.mean(np.square(block[..., :count], dtype=np.float64), axis=1)  # (sources, count)
        ids, starts = _runs(np.arange(self.position, self.position + count) // self.step)
        self.energy[:, ids] += np.add.reduceat(power, starts, axis=1)
        self.counts[ids] += np.diff(np.append(starts, count))
        self.position += count

    def complete(self) -> bool:
        """Whether the whole song went by."""
        return self.position >= self.frames

    def power(self) -> np.ndarray:
        """Mean power per source and point (sources, points)."""
        return self.energy / np.maximum(self.counts, 1)

    def db(self) -> np.ndarray:
        """Levels in dB (sources, points), :data:`FLOOR_DB` for silence."""
        return np.maximum(10 * np.log10(np.maximum(self.power(), 1e-30)), FLOOR_DB)

    def rest_db(self, source: str, labels: Labels) -> float | None:
        """A source's mean level over the points that lie wholly in its labelled rests (None: no such point)."""
        if source not in labels.sources:
            return None
        times = np.arange(self.points + 1) * self.seconds_per_point
        inside = np.zeros(self.points, bool)
        for start, end in rests(labels, source):
            inside |= (times[:-1] >= start) & (times[1:] <= end + 1e-9)
        inside &= self.counts > 0
        if not inside.any():
            return None
        mean = float(self.power()[self.sources.index(source), inside].mean())
        return max(10 * math.log10(mean), FLOOR_DB) if mean > 0 else FLOOR_DB


# ---------------------------------------------------------------- figures

_LANE, _LANE_GAP, _WAVE, _AXIS, _RIGHT = 24, 6, 90, 34, 28  # pixels


def plot_left(names: Iterable[str]) -> int:
    """The left edge of the time axis: room for the longest of ``names`` (the source names) and a gap."""
    return max(90, max((text_width(name) for name in names), default=0) + 24)


def _time_axis(figure: Figure, extent: float, x0: float, x1: float, y: float) -> None:
    """Ticks and their times under a timeline of ``extent`` seconds drawn from ``x0`` to ``x1``."""
    step = tick_step(extent, x1 - x0, text_width(tick_label(extent, 1 if extent >= 1 else 0.1)) + 24)
    figure.add(Rect(x0, y, x1 - x0, 1, "muted"))
    for k in range(math.floor(extent / step + 1e-9) + 1):
        x = x0 + (x1 - x0) * k * step / extent
        figure.add(Rect(x, y, 1, 6, "muted"), Text(x, y + 22, tick_label(k * step, step), "muted", "middle", 11))


def lanes_figure(labels: Labels, envelope: Envelope | None = None, *, width: int = FIGURE_WIDTH) -> Figure:
    """The song's waveform (when ``envelope`` is given) over one lane per source, coloured where the labels say it
    plays; an unconstrained source's lane is grey throughout. Times run over the song's duration (the labels', else
    the envelope's, else up to the last label)."""
    extent = labels.duration or (envelope.duration if envelope is not None else 0.0) or labels.extent() or 1.0
    x0, x1 = plot_left([*labels.sources, "mixture"]), width - _RIGHT
    figure = Figure(width, 0, f"where each source plays, {format_clock(extent)}")
    y = 10.0
    if envelope is not None:
        lows, highs = envelope.bounds()
        span = (x1 - x0) * min(1.0, envelope.duration / extent)
        figure.add(Text(x0 - 10, y + _WAVE / 2 + 4, "mixture", "text", "end"),
                   Band(x0, y, span, _WAVE, lows, highs))
        y += _WAVE + _LANE_GAP * 2
    for index, source in enumerate(labels.sources):
        figure.add(Text(x0 - 10, y + _LANE / 2 + 4, source, "text", "end"), Rect(x0, y, x1 - x0, _LANE, "lane"))
        if source in labels.unconstrained:
            figure.add(Rect(x0, y, x1 - x0, _LANE, "free", f"{source}: no labels, may play anywhere"))
        else:
            for start, end in labels.regions[source]:
                end = min(end, extent)
                left, right = x0 + (x1 - x0) * start / extent, x0 + (x1 - x0) * end / extent
                figure.add(Rect(left, y, max(right - left, 1), _LANE, source_role(index),
                                f"{source}: {format_clock(start)} to {format_clock(end)}"))
        y += _LANE + _LANE_GAP
    _time_axis(figure, extent, x0, x1, y + 2)
    y += _AXIS + 16
    swatches = [(source_role(0), "plays"), ("lane", "rests"), ("free", "no labels: may play anywhere")]
    x = float(x0)
    for role, meaning in swatches:
        figure.add(Rect(x, y - 10, 14, 12, role), Text(x + 20, y, meaning, "muted", "start", 11))
        x += 20 + text_width(meaning) + 28
    figure.height = int(y + 12)
    return figure


def levels_figure(
    source: str, index: int, before: np.ndarray | None, after: np.ndarray, seconds_per_point: float, extent: float,
    labels: Labels | None, *, width: int = FIGURE_WIDTH, left: int | None = None,
) -> Figure:
    """One source's level over time (dB per point, :data:`CHART_DB`): ``after`` in the source's colour, ``before``
    dashed grey, the labelled rests shaded."""
    height, top, bottom = 150, 10.0, 120.0
    x0, x1 = left if left is not None else plot_left([source]), width - _RIGHT
    low, high = CHART_DB
    figure = Figure(width, height, f"level of {source} over time, dB")
    extent = extent or 1.0

    def x_of(seconds: float) -> float:
        return x0 + (x1 - x0) * min(seconds, extent) / extent

    def y_of(db: np.ndarray) -> np.ndarray:
        return top + (bottom - top) * (high - np.clip(db, low, high)) / (high - low)

    if labels is not None and source in labels.sources:
        for start, end in rests(labels, source):
            figure.add(Rect(x_of(start), top, max(x_of(end) - x_of(start), 1), bottom - top, "rest",
                            f"{source} labelled silent: {format_clock(start)} to {format_clock(end)}"))
    for db in range(int(high), int(low) - 1, -20):
        y = float(y_of(np.array([db]))[0])
        figure.add(Rect(x0, y, x1 - x0, 1, "grid"), Text(x0 - 8, y + 4, f"{db} dB", "muted", "end", 11))
    figure.add(Text(x0 - 8, top + (bottom - top) / 2 + 26, source, "text", "end"))
    times = (np.arange(after.shape[-1]) + 0.5) * seconds_per_point
    for values, role, dashed in ((before, "before", True), (after, source_role(index), False)):
        if values is None:
            continue
        points = tuple(zip((float(x) for x in np.vectorize(x_of)(times)), (float(y) for y in y_of(values))))
        figure.add(Line(points, role, 1.5, dashed))
    _time_axis(figure, extent, x0, x1, bottom + 2)
    return figure


__all__ = ["Envelope", "Levels", "lanes_figure", "levels_figure", "plot_left"]

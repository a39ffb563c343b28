"""What a person sees: the labels as lanes over the song's waveform, and the report page of one song.

Meters watch streams of blocks as they go by (:meth:`Envelope.tap`, :meth:`Levels.tap`): the mixture's waveform
envelope, and each source's level over time (dB RMS per 100 ms, longer steps for long songs). :func:`lanes_figure`
draws one lane per source (where the labels say it plays) under the waveform, as ``ugosa labels show --plot`` and the
report page show it; :func:`levels_figure` draws a source's level before and after (the pretrained and the final
stems, or the stems given to ``filter`` and the filtered ones) with its labelled rests shaded.

:func:`render_report` writes the page of a :class:`SongReport`: one self-contained HTML file (inline CSS, SVG and a
small script; no request to any server) with players linked relatively to the audio files, readable on a phone and
a wide screen, light and dark. Its adaptation section comes from :func:`adaptation_html`, which takes the
``adaptation`` value of a song's JSON result as it is.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ugosa_cli import __version__
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import write_atomic
from ugosa_cli.labels import Labels, format_clock, rests, tick_label, tick_step
from ugosa_cli.output import safe_part
from ugosa_cli.plot import DARK, LIGHT, Band, Figure, Line, Rect, Text, escape, source_role, text_width

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
        figure.add(Rect(x, y, 1, 6, "muted"), Text(x, y + 22, tick_label(k * step, step), "muted", "middle", 12))


def lanes_figure(
    labels: Labels, envelope: Envelope | None = None, *, width: int = FIGURE_WIDTH, playhead: bool = False
) -> Figure:
    """The song's waveform (when ``envelope`` is given) over one lane per source, coloured where the labels say it
    plays; an unconstrained source's lane is grey throughout. Times run over the song's duration (the labels', else
    the envelope's, else up to the last label). ``playhead``: a line for a page's script to move."""
    extent = labels.duration or (envelope.duration if envelope is not None else 0.0) or labels.extent() or 1.0
    x0, x1 = plot_left([*labels.sources, "mixture"]), width - _RIGHT
    figure = Figure(width, 0, f"where each source plays, {format_clock(extent)}")
    y = 10.0
    if envelope is not None:
        lows, highs = envelope.bounds()
        span = (x1 - x0) * min(1.0, envelope.duration / extent)
        figure.add(Text(x0 - 10, y + _WAVE / 2 + 4, "mixture", "text", "end", 13),
                   Band(x0, y, span, _WAVE, lows, highs))
        y += _WAVE + _LANE_GAP * 2
    for index, source in enumerate(labels.sources):
        figure.add(Text(x0 - 10, y + _LANE / 2 + 4, source, "text", "end", 13),
                   Rect(x0, y, x1 - x0, _LANE, "lane", name="lane"))
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
    if playhead:
        figure.add(_playhead(x0, 4, y))
    figure.axis = (x0, x1, extent)
    y += _AXIS + 16
    swatches = [(source_role(0), "plays"), ("lane", "rests"), ("free", "no labels: may play anywhere")]
    if not labels.sources:  # the waveform alone
        swatches, y = [], y - 16
    x = float(x0)
    for role, meaning in swatches:
        figure.add(Rect(x, y - 10, 14, 12, role), Text(x + 20, y, meaning, "muted", "start", 11))
        x += 20 + text_width(meaning) + 28
    figure.height = int(y + 12)
    return figure


def levels_figure(
    source: str, index: int, before: np.ndarray | None, after: np.ndarray, seconds_per_point: float, extent: float,
    labels: Labels | None, *, width: int = FIGURE_WIDTH, left: int | None = None, playhead: bool = False,
) -> Figure:
    """One source's level over time (dB per point, :data:`CHART_DB`): ``after`` in the source's colour, ``before``
    dashed grey, the labelled rests shaded; ``playhead`` as for :func:`lanes_figure`."""
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
        figure.add(Rect(x0, y, x1 - x0, 1, "grid"), Text(x0 - 8, y + 4, f"{db} dB", "muted", "end", 12))
    times = (np.arange(after.shape[-1]) + 0.5) * seconds_per_point
    for values, role, dashed in ((before, "before", True), (after, source_role(index), False)):
        if values is None:
            continue
        points = tuple(zip((float(x) for x in np.vectorize(x_of)(times)), (float(y) for y in y_of(values))))
        figure.add(Line(points, role, 1.5, dashed))
    _time_axis(figure, extent, x0, x1, bottom + 2)
    if playhead:
        figure.add(_playhead(x0, top, bottom))
    figure.axis = (x0, x1, extent)
    return figure


def _playhead(x: float, top: float, bottom: float) -> Line:
    """Where the page's player is (its script moves it; hidden until then)."""
    return Line(((x, top), (x, bottom)), "text", 1.5, name="playhead")


# ---------------------------------------------------------------- the page

REPORT_NAME = "report.html"


@dataclass(frozen=True)
class Player:
    """An audio player of the page: what it plays, in which group ("mixture", "written": the stems this run wrote,
    "given": the stems ``filter`` was given), and a link relative to the page (None: it cannot be linked, ``note``
    says why)."""

    name: str
    group: str
    href: str | None
    note: str | None = None


def report_pages(planned: Sequence[tuple[str, Mapping[str, Path]]], names: Mapping[str, str] | None = None
                 ) -> dict[str, Path]:
    """Where each song's page goes: :data:`REPORT_NAME` in the folder of its stems (their deepest common folder),
    or ``<track>.report.html`` there where songs share that folder. ``planned``: each song as given with its stems'
    paths; ``names``: each song's ``{track}`` (default: as given). Pages that would still collide are refused."""
    folders = {track: Path(os.path.commonpath([str(path.parent) for path in paths.values()]))
               for track, paths in planned}
    shared = {folder.resolve() for folder in folders.values() if
              sum(other.resolve() == folder.resolve() for other in folders.values()) > 1}
    pages: dict[str, Path] = {}
    seen: dict[Path, str] = {}
    for track, folder in folders.items():
        name = (names or {}).get(track, track)
        page = folder / (f"{safe_part(name)}.{REPORT_NAME}" if folder.resolve() in shared else REPORT_NAME)
        other = seen.setdefault(page.resolve(), track)
        if other != track:
            raise InputError(f"{other} and {track}: their report pages would both be {page}; put {{track}} or "
                             "{parent} in --filename")
        pages[track] = page
    return pages


def relative_href(target: str | Path, page: Path) -> str | None:
    """A link from the page file ``page`` to ``target``, relative and URL-quoted; None where no relative path
    exists (another drive)."""
    try:
        relative = os.path.relpath(Path(target).resolve(), page.resolve().parent)
    except ValueError:
        return None
    return urllib.parse.quote(Path(relative).as_posix())


def players(page: Path, mixture: str | Path | None, groups: Mapping[str, Mapping[str, Path]]) -> list[Player]:
    """The page's players: the mixture (``None``: it came from standard input) and each stem of each group
    ("written", "given"), linked relatively from ``page``."""
    found = []
    if mixture is None:
        found.append(Player("mixture", "mixture", None, "the song came from standard input: there is no file to play"))
    else:
        href = relative_href(mixture, page)
        note = None if href is not None else "the song is on another drive than the page: no relative link to it"
        found.append(Player("mixture", "mixture", href, note))
    for group, stems in groups.items():
        for name, path in stems.items():
            href = relative_href(path, page)
            found.append(Player(name, group, href, None if href else "on another drive than the page"))
    return found


@dataclass
class SongReport:
    """What the report page of one song shows.

    ``command``: the command that wrote it (separate, adapt, filter); ``facts``: (what, value) lines of the header;
    ``labels``: per source of the levels (None: no labels); ``envelope``: the mixture's; ``before``/``after``: the
    sources' levels (``before`` None where the stems were not changed); ``names``: what before and after are;
    ``adaptation``: the ``adaptation`` value of the song's JSON result (:func:`adaptation_html`).
    """

    title: str
    command: str
    envelope: Envelope
    after: Levels
    before: Levels | None = None
    names: tuple[str, str] = ("pretrained", "final")
    labels: Labels | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    players: list[Player] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    adaptation: Mapping[str, Any] | None = None


class ReportRecorder:
    """The meters of one song's page: the mixture's envelope (blocks (channels, n)), and the sources' levels
    before and after (blocks (sources, channels, n)); :meth:`report` puts what they saw on a page."""

    def __init__(self, sources: Sequence[str], samplerate: int, frames: int) -> None:
        self.envelope = Envelope(frames, samplerate)
        self.before = Levels(sources, samplerate, frames)
        self.after = Levels(sources, samplerate, frames)

    def complete(self, pretrained: Callable[[], Iterable[np.ndarray]], mixture: Iterable[np.ndarray]) -> None:
        """Measure what the run did not pass by the meters: the stems before (``pretrained`` makes them) where
        :attr:`before` did not see the whole song, and the mixture's blocks (channels, n)."""
        if not self.before.complete():
            self.before = Levels(self.before.sources, self.before.samplerate, self.before.frames)
            for _ in self.before.tap(pretrained()):
                pass
        for block in mixture:
            self.envelope.add(block)

    def report(self, title: str, command: str, *, changed: bool = True, **fields: Any) -> SongReport:
        """The page's content; ``changed`` False: the stems were written as the model made them (one level each)."""
        return SongReport(title, command, self.envelope, self.after, self.before if changed else None, **fields)


def _number(value: float) -> str:
    if value == 0 or 1e-3 <= abs(value) < 1e6:
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return f"{value:.3g}"


def _value(value: Any) -> str:
    """A JSON-ready value as HTML: tables for mappings and lists of mappings, everything escaped."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "–"
    if isinstance(value, (int, float)):
        return _number(value) if math.isfinite(value) else escape(str(value))
    if isinstance(value, Mapping):
        if not value:
            return "–"
        rows = "".join(f"<tr><th>{escape(str(key))}</th><td>{_value(item)}</td></tr>" for key, item in value.items())
        return f'<table class="pairs">{rows}</table>'
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(item, Mapping) for item in value):
            return _table(value)
        return ", ".join(_value(item) for item in value) or "–"
    return escape(str(value))


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{escape(str(column))}</th>" for column in columns)
    body = "".join("<tr>" + "".join(f"<td>{_value(row.get(column))}</td>" for column in columns) + "</tr>"
                   for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _db(value: Any, *, sign: bool = False) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return "–"
    return f"{value:+.1f} dB" if sign else f"{value:.1f} dB"


def _seconds(value: Any) -> str:
    return f"{value:.1f} s" if isinstance(value, (int, float)) and math.isfinite(value) else "–"


_PLAN_KEYS = ("strategy", "trains", "trainable_parameters", "device", "windows", "steps", "estimated_seconds",
              "estimated_memory_bytes", "plan", "settings", "notes", "warnings", "resplits")


def adaptation_html(adaptation: Mapping[str, Any]) -> str:
    """The page's section on the adaptation, from the ``adaptation`` value of a song's JSON result as ``separate
    --json`` prints it (``plan``, ``seconds``, ``steps``, ``stopped``, ``history``, ``check``, ``decision``): what
    was trained (and why it stopped early),
    which stems were written and why, the leakage into the held-out rests before and after, the loss per pass
    and the settings. Keys it does not know are shown as they are, under "More figures", so a newer result is
    never hidden."""
    plan: Mapping[str, Any] = adaptation.get("plan") or {}
    parts = ['<section id="adaptation"><h2>Adaptation</h2>']
    strategy = escape(str(plan.get("strategy", "?")))
    if plan.get("resplits"):  # the plan's own words say why
        text = str(plan.get("plan") or "not adapting: the labels were applied to the pretrained stems instead")
        decision = escape(text[:1].upper() + text[1:]) + ("" if text.endswith(".") else ".")
    elif plan.get("steps"):
        seconds = adaptation.get("seconds")
        took = f" in {_number(seconds)} s" if isinstance(seconds, (int, float)) else ""
        made, planned = adaptation.get("steps", plan.get("steps")), plan.get("steps")
        steps = f"{_value(made)} steps" if made == planned else f"{_value(made)} of {_value(planned)} planned steps"
        decision = (f"Adapted with {strategy} ({escape(str(plan.get('trains', '')))}, "
                    f"{_value(plan.get('trainable_parameters'))} trainable parameters): {_value(plan.get('windows'))} "
                    f"windows, {steps}{took}; settings: {escape(str(plan.get('plan', '')))}.")
        if adaptation.get("stopped"):
            decision += f" Training {escape(str(adaptation['stopped']))}."
    else:
        decision = f"Not adapted (strategy {strategy}): the model as it is."
    parts.append(f'<p class="decision">{decision}</p>')
    verdict: Mapping[str, Any] = adaptation.get("decision") or {}
    if verdict:
        written = "the adapted model's stems" if verdict.get("write") == "adapted" else "the pretrained model's stems"
        reason = str(verdict.get("reason", ""))
        parts.append(f'<p class="decision"><b>Written: {written}</b>, because {escape(reason)}.</p>')
    check: Mapping[str, Any] = adaptation.get("check") or {}
    checked = [row for row in check.get("sources") or [] if isinstance(row, Mapping)]
    if checked:
        parts.append("<h3>The check on labels held out of training</h3>"
                     "<p>On parts of the labelled rests the model never trained on: each source's level where it is "
                     "labelled silent, relative to its level where it plays, and what the stems labelled playing "
                     "leave unexplained of the mix (lower is better). Measured on the song and its labels alone.</p>")
        rows = [{"source": row.get("source"), "held out": _seconds(row.get("seconds")),
                 "pretrained": _db(row.get("before_db")), "adapted": _db(row.get("after_db")),
                 "change": _db(_difference(row.get("after_db"), row.get("before_db")), sign=True)} for row in checked]
        rows.append({"source": "(unexplained mix)", "held out": _seconds(check.get("seconds")),
                     "pretrained": _db(check.get("residual_before_db")), "adapted": _db(check.get("residual_after_db")),
                     "change": _db(_difference(check.get("residual_after_db"), check.get("residual_before_db")),
                                   sign=True)})
        parts.append(_table(rows))
    for key, kind in (("warnings", "warning"), ("notes", "note")):
        items = plan.get(key) or []
        if items:
            parts.append(f'<ul class="{kind}s">' + "".join(f"<li>{escape(str(item))}</li>" for item in items) + "</ul>")
    history = adaptation.get("history") or []
    if history:
        parts.append("<h3>Loss per pass over the windows</h3>"
                     + _table([{"pass": i + 1, **row} for i, row in enumerate(history)]))
    if plan:
        settings = {key: plan[key] for key in _PLAN_KEYS if key in plan and key not in ("notes", "warnings")}
        parts.append(f"<details><summary>Plan and settings</summary>{_value(settings)}</details>")
    extra = {key: value for key, value in adaptation.items()
             if key not in ("plan", "seconds", "steps", "stopped", "history", "check", "decision")}
    extra.update({f"plan.{key}": value for key, value in plan.items() if key not in _PLAN_KEYS})
    if extra:
        parts.append(f"<h3>More figures</h3>{_value(extra)}")
    parts.append("</section>")
    return "\n".join(parts)


def _difference(after: Any, before: Any) -> float | None:
    """``after - before`` when both are numbers."""
    numbers = (int, float)
    return after - before if isinstance(after, numbers) and isinstance(before, numbers) else None


def _css() -> str:
    def variables(palette: Mapping[str, str]) -> str:
        return " ".join(f"--{role}: {colour};" for role, colour in palette.items())

    roles = "\n".join(f".f-{role} {{ fill: var(--{role}); }} .s-{role} {{ stroke: var(--{role}); fill: none; }}"
                      for role in LIGHT)
    return f"""
:root {{ color-scheme: light dark; {variables(LIGHT)} --link: #0969da; --warn: #9a6700; }}
@media (prefers-color-scheme: dark) {{ :root {{ {variables(DARK)} --link: #58a6ff; --warn: #d29922; }} }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: var(--bg); color: var(--text);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
main {{ max-width: 1100px; margin: 0 auto; padding: 1rem; }}
h1 {{ font-size: 1.5rem; margin: 0.5rem 0; overflow-wrap: anywhere; }}
h2 {{ font-size: 1.2rem; margin: 2rem 0 0.5rem; border-bottom: 1px solid var(--grid); }}
h3 {{ font-size: 1rem; margin: 1.2rem 0 0.4rem; }}
.facts {{ color: var(--muted); margin: 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 0.2rem 1.2rem; }}
.facts b {{ color: var(--text); font-weight: 600; }}
svg {{ width: 100%; height: auto; display: block; font-family: inherit; }}
svg text {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }}
svg[data-seconds] {{ cursor: pointer; }}
[data-name=playhead] {{ visibility: hidden; }}
.playing [data-name=playhead] {{ visibility: visible; }}
.players {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 0.6rem; }}
.player {{ background: var(--lane); border-radius: 6px; padding: 0.5rem; }}
.player span {{ display: block; font-weight: 600; overflow-wrap: anywhere; }}
.player small {{ color: var(--muted); }}
audio {{ width: 100%; }}
.figure {{ overflow-x: auto; }}
.level {{ margin: 0.6rem 0 1.2rem; }}
.level h3 {{ margin: 0.8rem 0 0; }}
.level p {{ margin: 0; color: var(--muted); }}
.legend span {{ display: inline-block; margin-right: 1.2rem; }}
.key {{ display: inline-block; width: 1.6rem; height: 0; border-top: 2px solid var(--text); vertical-align: middle; }}
.key.before {{ border-top: 2px dashed var(--before); }}
.key.rest {{ height: 0.8rem; border: 0; background: var(--rest); }}
.decision {{ font-weight: 600; }}
{roles}
.warnings li {{ color: var(--warn); }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; margin: 0.4rem 0; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid var(--grid); padding: 0.2rem 0.6rem; text-align: left; vertical-align: top; }}
details {{ margin: 0.6rem 0; }}
summary {{ cursor: pointer; color: var(--link); }}
footer {{ color: var(--muted); font-size: 0.85rem; margin: 2rem 0 1rem; }}
@media (max-width: 600px) {{ body {{ font-size: 15px; }} main {{ padding: 0.6rem; }}
  .figure svg {{ min-width: 720px; }} }}
"""


# Moves the playhead of every time axis with the playing player, pauses the others, and seeks where a figure is
# clicked. No network, no storage.
_SCRIPT = """
(function () {
  "use strict";
  var figures = Array.prototype.slice.call(document.querySelectorAll("svg[data-seconds]"));
  var players = Array.prototype.slice.call(document.querySelectorAll("audio"));
  var current = null;
  function place(seconds) {
    figures.forEach(function (svg) {
      var x0 = Number(svg.getAttribute("data-x0")), x1 = Number(svg.getAttribute("data-x1"));
      var total = Number(svg.getAttribute("data-seconds")) || 1;
      var head = svg.querySelector("[data-name=playhead]");
      if (!head) { return; }
      var x = x0 + (x1 - x0) * Math.max(0, Math.min(seconds / total, 1));
      var ys = head.getAttribute("points").split(" ").map(function (p) { return p.split(",")[1]; });
      head.setAttribute("points", x + "," + ys[0] + " " + x + "," + ys[1]);
    });
    document.body.classList.add("playing");
  }
  players.forEach(function (player) {
    player.addEventListener("play", function () {
      current = player;
      players.forEach(function (other) { if (other !== player) { other.pause(); } });
    });
    player.addEventListener("timeupdate", function () { if (player === current) { place(player.currentTime); } });
  });
  figures.forEach(function (svg) {
    svg.addEventListener("click", function (event) {
      var player = current || players[0];
      var box = svg.getBoundingClientRect();
      if (!player || !box.width) { return; }
      var x = (event.clientX - box.left) * svg.viewBox.baseVal.width / box.width;
      var x0 = Number(svg.getAttribute("data-x0")), x1 = Number(svg.getAttribute("data-x1"));
      var fraction = (x - x0) / (x1 - x0);
      if (fraction < 0 || fraction > 1) { return; }
      player.currentTime = fraction * Number(svg.getAttribute("data-seconds"));
      current = player;
      place(player.currentTime);
    });
  });
}());
"""

_GROUPS = {"mixture": "The song", "written": "Stems written", "given": "Stems given"}


def _players_html(found: Sequence[Player]) -> str:
    if not found:
        return ""
    parts = ['<section id="listen"><h2>Listen</h2>']
    for group, heading in _GROUPS.items():
        members = [player for player in found if player.group == group]
        if not members:
            continue
        if group != "mixture":
            parts.append(f"<h3>{heading}</h3>")
        parts.append('<div class="players">')
        for player in members:
            body = (f'<audio controls preload="none" src="{escape(player.href)}"></audio>' if player.href is not None
                    else f"<small>{escape(player.note or 'no file to play')}</small>")
            parts.append(f'<div class="player"><span>{escape(player.name)}</span>{body}</div>')
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _levels_html(report: SongReport) -> str:
    after, before = report.after, report.before
    before_name, after_name = report.names
    legend = f'<span><i class="key"></i> {escape(after_name)} (in the source\'s colour)</span>'
    if before is not None:
        legend += f'<span><i class="key before"></i> {escape(before_name)}</span>'
    if report.labels is not None:
        legend += '<span><i class="key rest"></i> labelled silent</span>'
    step = after.seconds_per_point
    what = f"{step * 1000:.0f} ms" if step < 1 else f"{step:.2f} s"
    parts = ['<section id="levels"><h2>Level over time</h2>',
             f"<p>Each source's level in dB RMS per {what}. Where a source is labelled silent, what is left is "
             "leakage: the lower, the better.</p>", f'<p class="legend">{legend}</p>']
    left = plot_left([*after.sources, "mixture"])  # as the lanes above, so that times line up
    extent = report.envelope.duration
    after_db = after.db()
    before_db = before.db() if before is not None else None
    for index, source in enumerate(after.sources):
        figure = levels_figure(source, index, None if before_db is None else before_db[index], after_db[index], step,
                               extent, report.labels, left=left, playhead=True)
        summary = ""
        if report.labels is not None:
            now = after.rest_db(source, report.labels)
            if now is not None:
                was = None if before is None else before.rest_db(source, report.labels)
                change = f"{escape(before_name)} {was:.1f} dB, {escape(after_name)} {now:.1f} dB ({now - was:+.1f} dB)" \
                    if was is not None else f"{now:.1f} dB"
                summary = f"<p>Level where {escape(source)} is labelled silent: {change}</p>"
        parts.append(f'<div class="level" data-source="{escape(source)}"><h3>{escape(source)}</h3>'
                     f'<div class="figure">{figure.svg(None)}</div>{summary}</div>')
    parts.append("</section>")
    return "\n".join(parts)


def write_report(page: Path, report: SongReport, inside: Path | None = None) -> None:
    """Render the page and write it to ``page`` atomically; ``inside``: the resolved folder it must land in
    (checked again as it is written)."""
    write_atomic(page, render_report(report).encode("utf-8"), inside=inside)


def render_report(report: SongReport) -> str:
    """The report page of one song: a self-contained HTML document."""
    title = escape(report.title)
    facts = "".join(f"<li>{escape(what)}: <b>{escape(value)}</b></li>" for what, value in report.facts)
    labels_part = ""
    if report.labels is not None:
        figure = lanes_figure(report.labels, report.envelope, playhead=True)
        labels_part = ('<section id="labels"><h2>Where the labels say each source plays</h2>'
                       f'<div class="figure">{figure.svg(None)}</div></section>')
    else:
        duration = report.envelope.duration
        figure = lanes_figure(Labels({}, (), duration), report.envelope, playhead=True)
        labels_part = (f'<section id="labels"><h2>The song</h2><div class="figure">{figure.svg(None)}</div>'
                       "<p>No labels were given.</p></section>")
    notes = ""
    if report.notes:
        notes = ('<section id="notes"><h2>Notes</h2><ul>'
                 + "".join(f"<li>{escape(note)}</li>" for note in report.notes) + "</ul></section>")
    adaptation = adaptation_html(report.adaptation) if report.adaptation is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="ugosa {escape(__version__)}">
<title>{title}: ugosa {escape(report.command)}</title>
<style>{_css()}</style>
</head>
<body>
<main>
<header><h1>{title}</h1><ul class="facts">{facts}</ul></header>
{_players_html(report.players)}
{labels_part}
{_levels_html(report)}
{adaptation}
{notes}
<footer>Written by ugosa {escape(__version__)} ({escape(report.command)}). This page works offline: it loads nothing
from the network, and its players open the audio files next to it by relative links.</footer>
</main>
<script>{_SCRIPT}</script>
</body>
</html>
"""


__all__ = [
    "REPORT_NAME",
    "Envelope",
    "Levels",
    "Player",
    "ReportRecorder",
    "SongReport",
    "adaptation_html",
    "lanes_figure",
    "levels_figure",
    "players",
    "plot_left",
    "relative_href",
    "render_report",
    "report_pages",
    "write_report",
]

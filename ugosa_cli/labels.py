"""Activation labels: where each source plays, read from what users write, as regions or a matrix.

Formats (detected from content, or named with ``fmt``; all in :data:`LABEL_FORMATS`):

- ``audacity``: an Audacity label track export, ``start<TAB>end<TAB>text`` per line. Lines starting
  with a backslash (the frequency range of the region above) are skipped.
- ``csv`` / ``tsv``: a table with a header whose columns are matched loosely (start/onset/begin/from/time,
  end/offset/stop/to or duration/length, label/source/instrument/stem/name), separated by commas,
  semicolons or tabs; a header-less table is read as start, end, label.
- ``frames``: a frame-wise table, a time column plus one column per source holding 0/1 (or values in
  [0, 1], active from 0.5). Each row holds until the next row; the last row holds until the end of the song.
- ``json``: the shape of :func:`labels_json`.

Times are seconds (``12.5``, also with a decimal comma), ``mm:ss(.fff)`` or ``hh:mm:ss(.fff)``; an end may be
``end`` (until the end of the song). BOM, CRLF, blank lines and ``#`` comments are tolerated.

Semantics: a label text names one or more sources (``drums + bass``), case-insensitively, with synonyms
(``vox``, ``perc``, ``bass guitar``, ...; for a two-source model ``other``, ``instrumental`` and the like name its
second source) and a user mapping. A source with at least one label is active only
inside its regions; a source never labelled is unconstrained (active everywhere). A text starting with
``no ``, ``!`` or ``-`` marks an explicit silence: a source with only silences is active everywhere except
there; a source with both is active in its regions minus its silences. Overlapping regions merge. A margin
widens every active region on both sides (and so narrows every silence). Regions are clipped to the song's
duration when it is known. Point labels (start = end) are ignored with a warning.

All times are kept rounded to microseconds, so every format writes them exactly and reads them back
unchanged; an open end (an active region that lasts until an unknown end of the song) is ``inf``.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import read_text_file
from ugosa_cli.sources import DEFAULT_SOURCES, check_source_names

LABEL_FORMATS: tuple[str, ...] = ("audacity", "csv", "tsv", "frames", "json")
TIME_DIGITS = 6  # times are rounded to microseconds
MAX_TIME = 1e7  # seconds (about 116 days): anything larger is a typo
OPEN_END = "end"

Region = tuple[float, float]

# Words users write for the model's sources (compared after normalisation, see ``_normalise``).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "drums": ("drum", "drum kit", "drumkit", "kit", "percussion", "percussions", "perc", "beat", "beats"),
    "bass": ("bass guitar", "bassline", "bass line", "electric bass", "double bass", "upright bass", "sub bass"),
    "other": ("others", "accompaniment", "rest", "instruments"),
    "vocals": (
        "vocal", "voice", "voices", "vox", "singing", "singer", "vocalist", "lead vocal", "lead vocals",
        "lead voice", "backing vocals", "backing vocal", "backing voice", "choir", "vocs",
    ),
    # Sources of six-source models (htdemucs_6s); with a four-source model these words are unknown and the
    # error suggests --map guitar=other.
    "guitar": ("gtr", "guit", "electric guitar", "acoustic guitar", "lead guitar", "rhythm guitar", "e-guitar"),
    "piano": ("keys", "pno", "grand piano", "upright piano", "electric piano", "e-piano", "keyboard", "keyboards"),
}
# What users call the second source of a two-source model (a vocal model's instrumental, however it is named).
REST_WORDS = ("other", "others", "instrumental", "instrumentals", "inst", "accompaniment", "backing track", "karaoke",
              "music", "rest")
_NEGATIONS = ("no ", "not ", "without ", "!", "-")
_LABEL_SPLIT = re.compile(r"\s*[+&/,]\s*")
_SECONDS = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INTEGER = re.compile(r"[0-9]+")
_TIMELIKE = re.compile(r"[-+]?[0-9.,:]+")
_NUMBERISH = re.compile(r"[-+]?[0-9.,:]*[0-9]")  # starts like a number: a time, perhaps a mistyped one

# Header words, matched against the tokens of a column name.
_END_WORDS = {"end", "offset", "stop", "to", "until", "endtime", "end_time", "tend"}
_DURATION_WORDS = {"duration", "length", "dur", "len"}
_START_WORDS = {"start", "onset", "begin", "beginning", "from", "starttime", "start_time", "tstart"}
_TIME_WORDS = {"time", "t", "seconds", "sec", "secs", "s", "timestamp", "position"}
_LABEL_WORDS = {"label", "labels", "source", "sources", "instrument", "instruments", "stem", "stems", "name",
                "text", "annotation", "tag", "track"}


@dataclass(frozen=True)
class Labels:
    """Active regions per source, in model source order.

    ``regions`` holds merged, sorted ``(start, end)`` pairs in seconds; an unconstrained source holds
    ``((0, duration),)`` when the duration is known and ``()`` otherwise. ``warnings`` are lines for the user.
    """

    regions: dict[str, tuple[Region, ...]]
    unconstrained: tuple[str, ...]
    duration: float | None
    warnings: tuple[str, ...] = ()

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.regions)

    def active_seconds(self, source: str) -> float:
        """Total active time of one source (``inf`` for an open end or an unconstrained source of unknown length)."""
        if source in self.unconstrained and self.duration is None:
            return math.inf
        return sum(end - start for start, end in self.regions[source])

    def extent(self) -> float:
        """The duration when known, else the last finite time any label mentions (0 when there is none)."""
        if self.duration is not None:
            return self.duration
        times = [t for spans in self.regions.values() for region in spans for t in region if math.isfinite(t)]
        return max(times, default=0.0)


@dataclass(frozen=True)
class _Mark:
    """One label as read: a source, a span, whether it is a silence, and where it came from."""

    source: str
    start: float
    end: float
    negative: bool
    where: str


# ---------------------------------------------------------------- times


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def parse_time(text: str, *, where: str, allow_open_end: bool = False) -> float:
    """Seconds from ``12.5``, ``12,5``, ``mm:ss(.fff)`` or ``hh:mm:ss(.fff)``, rounded to microseconds.

    ``end`` (with ``allow_open_end``) gives ``inf``. Raises :class:`InputError` naming ``where``.
    """
    value = text.strip()
    if len(value) > 40:
        raise InputError(f"{where}: {_short(text)} is not a time; write seconds (12.5), mm:ss (1:02.5) or hh:mm:ss")
    if allow_open_end and value.lower() in (OPEN_END, "inf"):
        return math.inf
    if "," in value and "." not in value:
        value = value.replace(",", ".")
    if value.startswith("-") and _TIMELIKE.fullmatch(value):
        raise InputError(f"{where}: negative time {_short(text)}; times count from the start of the song (0)")
    parts = value.split(":")
    if (
        not 1 <= len(parts) <= 3
        or not _SECONDS.fullmatch(parts[-1])
        or not all(_INTEGER.fullmatch(p) for p in parts[:-1])
    ):
        hint = " or end" if allow_open_end else ""
        raise InputError(
            f"{where}: {_short(text)} is not a time; write seconds (12.5), mm:ss (1:02.5) or hh:mm:ss{hint}"
        )
    seconds = float(parts[-1])
    units = [int(p) for p in parts[:-1]]
    if (units and seconds >= 60) or (len(units) == 2 and units[1] >= 60):
        raise InputError(f"{where}: {_short(text)} is not a time: minutes and seconds after a colon must be below 60")
    total = seconds + sum(u * 60 ** (len(units) - i) for i, u in enumerate(units))
    return _checked_seconds(total, text, where)


def _checked_seconds(value: float, text: str, where: str) -> float:
    if math.isnan(value):
        raise InputError(f"{where}: {_short(text)} is not a number of seconds")
    if value > MAX_TIME:
        raise InputError(f"{where}: time {_short(text)} is too large (more than {MAX_TIME:g} s); check the value")
    if value < 0:
        raise InputError(f"{where}: negative time {_short(text)}; times count from the start of the song (0)")
    return round(value, TIME_DIGITS)


def format_time(seconds: float) -> str:
    """Seconds as the shortest exact decimal (microseconds), ``end`` for an open end."""
    if math.isinf(seconds):
        return OPEN_END
    text = f"{seconds:.{TIME_DIGITS}f}".rstrip("0").rstrip(".")
    return text or "0"


def format_clock(seconds: float) -> str:
    """``m:ss`` or ``h:mm:ss`` for people (whole seconds, with tenths below a minute)."""
    if math.isinf(seconds):
        return OPEN_END
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)  # seconds


def tick_step(extent: float, span: float, spacing: float) -> float:
    """The finest of :data:`TICK_STEPS` whose ticks lie at least ``spacing`` apart when ``extent`` seconds take
    ``span`` (characters or pixels) on a timeline."""
    return next((step for step in TICK_STEPS if step / extent * span >= spacing), TICK_STEPS[-1])


def tick_label(seconds: float, step: float) -> str:
    """A timeline's tick: ``1.5s`` for steps under a second, else ``m:ss`` or ``h:mm:ss``."""
    if step < 1:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# ---------------------------------------------------------------- names


def _normalise(word: str) -> str:
    word = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", word.lower())
    word = re.sub(r"[\s_\-.:]+", " ", word)
    return re.sub(r"[\s0-9]+$", "", word).strip()


class _Names:
    """Resolves label words to sources: the user's mapping first, then names and synonyms."""

    def __init__(self, sources: Sequence[str], mapping: Mapping[str, str] | None) -> None:
        self.sources = check_source_names(tuple(sources))  # label words only ever resolve onto these names
        self.table: dict[str, str] = {}
        for source in self.sources:
            for word in SYNONYMS.get(source, ()):
                self.table[_normalise(word)] = source
        if len(self.sources) == 2:  # a two-stem model: its second source is the rest of the mixture
            for word in REST_WORDS:
                self.table.setdefault(_normalise(word), self.sources[1])
        for source in self.sources:
            self.table[_normalise(source)] = source
        for word, target in (mapping or {}).items():
            resolved = self._lookup(_normalise(target))
            if resolved is None:
                raise InputError(
                    f"--map {word}={target}: {target!r} is not a source; map words to one of {', '.join(self.sources)}"
                )
            self.table[_normalise(word)] = resolved

    def _lookup(self, key: str) -> str | None:
        if key in self.table:
            return self.table[key]
        if key.endswith("s") and key[:-1] in self.table:
            return self.table[key[:-1]]
        return self.table.get(key + "s")

    def resolve(self, word: str) -> tuple[str | None, bool]:
        """``(source or None when unknown, negative)``."""
        text = word.strip().lower()
        negative = False
        for prefix in _NEGATIONS:
            if text.startswith(prefix) and len(text) > len(prefix):
                text, negative = text[len(prefix):].strip(), True
                break
        return self._lookup(_normalise(text)), negative

    def unknown_message(self, word: str, where: str) -> str:
        examples = ", ".join(word for word in ("vox", "perc", "bass guitar") if _normalise(word) in self.table)
        synonyms = f" or synonyms such as {examples}" if examples else ""
        word = word.strip()
        shown = word if len(word) <= 40 else word[:40] + "..."
        target = "other" if "other" in self.sources else self.sources[-1]
        return (
            f"{where}: unknown source {shown!r}; use {', '.join(self.sources)}{synonyms}, "
            f"map your word with --map '{shown}={target}', or skip such labels with --ignore-unknown"
        )


def name_source(
    word: str, sources: Sequence[str] = DEFAULT_SOURCES, mapping: Mapping[str, str] | None = None
) -> tuple[str | None, bool]:
    """``(source or None, negated)`` for a word as a label would use it: case-insensitive, synonyms and the
    user's ``mapping`` (``--map``) included; ``negated`` for ``no vocals``, ``!drums``, ``-bass``."""
    return _Names(sources, mapping).resolve(word)


def source_for_name(word: str, sources: Sequence[str] = DEFAULT_SOURCES) -> str | None:
    """The source a word names (case-insensitive, synonyms included), or None; negations name nothing."""
    source, negative = name_source(word, sources)
    return None if negative else source


# ---------------------------------------------------------------- intervals


def _merge(spans: Iterable[Region]) -> list[Region]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _subtract(spans: list[Region], holes: list[Region]) -> list[Region]:
    result: list[Region] = []
    for start, end in spans:
        cursor = start
        for hole_start, hole_end in holes:
            if hole_end <= cursor or hole_start >= end:
                continue
            if hole_start > cursor:
                result.append((cursor, hole_start))
            cursor = max(cursor, hole_end)
        if cursor < end:
            result.append((cursor, end))
    return result


def _finish(spans: list[Region], margin: float, duration: float | None) -> tuple[Region, ...]:
    """Widen by ``margin``, clip to ``[0, duration]``, round to microseconds, merge."""
    limit = math.inf if duration is None else duration
    out = []
    for start, end in spans:
        start = round(max(0.0, start - margin), TIME_DIGITS)
        end = min(limit, end + margin)
        end = end if math.isinf(end) else round(end, TIME_DIGITS)
        out.append((start, end))
    return tuple(_merge(out))


def _where_list(marks: Sequence[_Mark], what: str, limit: int = 5) -> str:
    """``"2 region(s) ... at line 3, line 7"``: the number of distinct places and the first few of them."""
    wheres = list(dict.fromkeys(mark.where for mark in marks))
    shown = ", ".join(wheres[:limit]) + (f" and {len(wheres) - limit} more" if len(wheres) > limit else "")
    return what.format(count=len(wheres), where=shown)


def _build(
    marks: Sequence[_Mark],
    *,
    origin: str,
    sources: Sequence[str],
    duration: float | None,
    margin: float,
    constrained: Iterable[str] = (),
    warnings: Sequence[str] = (),
) -> Labels:
    """Apply the semantics (module docstring) to the marks read from one file."""
    notes = list(warnings)
    points = [m for m in marks if m.start == m.end]
    spans = [m for m in marks if m.start < m.end]
    if points:
        notes.append(
            f"{origin}: "
            + _where_list(points, "ignored {count} point label(s) (start = end) at {where}")
            + "; labels need a region: select a time range before adding the label"
        )
    if duration is not None:
        past = [m for m in spans if m.end > duration and math.isfinite(m.end)]
        if past:
            notes.append(
                f"{origin}: "
                + _where_list(past, "{count} region(s) reach past the end of the song")
                + f" ({format_time(duration)} s) and were clipped: "
                + _where_list(past, "{where}")
            )
    labelled = set(constrained) | {m.source for m in spans}
    regions: dict[str, tuple[Region, ...]] = {}
    free: list[str] = []
    everywhere: list[str] = []
    for source in sources:
        if source not in labelled:
            free.append(source)
            continue
        active = _merge((m.start, m.end) for m in spans if m.source == source and not m.negative)
        silent = _merge((m.start, m.end) for m in spans if m.source == source and m.negative)
        if not active and silent:
            active = [(0.0, math.inf)]
        final = _finish(_subtract(active, silent), margin, duration)
        if duration is None and final == ((0.0, math.inf),):
            everywhere.append(source)
        else:
            regions[source] = final
    if free and len(free) < len(sources):
        notes.append(f"{origin}: no labels for {', '.join(free)}: unconstrained (active everywhere)")
    elif free and not everywhere:
        notes.append(f"{origin}: no labels found: every source is unconstrained (active everywhere)")
    if everywhere:
        notes.append(f"{origin}: the labels leave {', '.join(everywhere)} active everywhere: unconstrained")
    unconstrained = tuple(s for s in sources if s in free or s in everywhere)
    whole = ((0.0, duration),) if duration is not None else ()
    return Labels(
        regions={s: whole if s in unconstrained else regions[s] for s in sources},
        unconstrained=unconstrained,
        duration=duration,
        warnings=tuple(notes),
    )


# ---------------------------------------------------------------- reading


def _decode(data: bytes, origin: str) -> str:
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise InputError(
                f"{origin}: not a text file (cannot decode it as UTF-8); save the labels as UTF-8 text"
            ) from None


def read_labels(
    path: str | Path,
    *,
    sources: Sequence[str] = DEFAULT_SOURCES,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    ignore_unknown: bool = False,
    margin: float = 0.0,
    duration: float | None = None,
) -> Labels:
    """Read a labels file (``-`` = standard input) and apply :func:`parse_labels`.

    The file must be a regular file of at most :data:`~ugosa_cli.fsutil.MAX_TEXT_BYTES` (16 MiB); stdin is
    read up to that size too.
    """
    origin = "<stdin>" if str(path) == "-" else str(path)
    data = read_text_file(path, origin, "a labels file")
    return parse_labels(
        _decode(data, origin),
        origin=origin,
        sources=sources,
        fmt=fmt,
        mapping=mapping,
        ignore_unknown=ignore_unknown,
        margin=margin,
        duration=duration,
    )


def parse_labels(
    text: str,
    *,
    origin: str,
    sources: Sequence[str] = DEFAULT_SOURCES,
    fmt: str | None = None,
    mapping: Mapping[str, str] | None = None,
    ignore_unknown: bool = False,
    margin: float = 0.0,
    duration: float | None = None,
) -> Labels:
    """Labels from the text of a labels file; ``fmt`` None detects the format from the content.

    Raises :class:`InputError` (naming ``origin``, the line and the value) for anything it cannot read.
    """
    if fmt is not None and fmt not in LABEL_FORMATS:
        raise InputError(f"unknown labels format {_short(fmt)}; use one of {', '.join(LABEL_FORMATS)}")
    if not math.isfinite(margin) or margin < 0:
        raise InputError(f"--margin {margin}: must be 0 or more seconds")
    if duration is not None and (not math.isfinite(duration) or duration <= 0):
        raise InputError(f"duration {duration}: must be a positive number of seconds")
    if "\x00" in text:
        raise InputError(f"{origin}: contains NUL bytes; this is not a text labels file")
    reader = _Reader(origin, _Names(sources, mapping), ignore_unknown)
    text = text.lstrip("\ufeff")
    if fmt == "json" or (fmt is None and text.lstrip().startswith("{")):
        marks, constrained, free, file_duration = reader.json(text)
        duration = duration if duration is not None else file_duration
    else:
        marks, constrained = reader.table(text, fmt)
        free = set()
    constrained -= free
    marks = [m for m in marks if m.source not in free]
    return _build(
        marks,
        origin=origin,
        sources=sources,
        duration=None if duration is None else round(float(duration), TIME_DIGITS),
        margin=margin,
        constrained=constrained,
        warnings=reader.notes(),
    )


def _header_role(name: str) -> str | None:
    tokens = set(re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", name.lower()).replace("_", " ").split())
    for role, words in (("end", _END_WORDS), ("duration", _DURATION_WORDS), ("start", _START_WORDS),
                        ("label", _LABEL_WORDS), ("time", _TIME_WORDS)):
        if tokens & words:
            return role
    return None


class _Reader:
    """Turns one file's text into marks, collecting what the user should be told."""

    def __init__(self, origin: str, names: _Names, ignore_unknown: bool) -> None:
        self.origin = origin
        self.names = names
        self.ignore_unknown = ignore_unknown
        self.skipped: dict[str, list[str]] = {}

    def notes(self) -> list[str]:
        if not self.skipped:
            return []
        words = ", ".join(f"{word!r} ({', '.join(wheres[:3])}{', ...' if len(wheres) > 3 else ''})"
                          for word, wheres in self.skipped.items())
        return [f"{self.origin}: skipped labels with unknown names: {words}"]

    def at(self, where: str) -> str:
        return f"{self.origin} {where}"

    def sources_of(self, text: str, where: str) -> list[tuple[str, bool]]:
        """The sources one label text names (``drums + bass``), with their negation flags."""
        if not text.strip():
            raise InputError(f"{self.at(where)}: the label has no text; write the source it marks, e.g. vocals")
        found = []
        for word in _LABEL_SPLIT.split(text.strip()):
            if not word:
                continue
            source, negative = self.names.resolve(word)
            if source is not None:
                found.append((source, negative))
            elif self.ignore_unknown:
                self.skipped.setdefault(word.strip().lower(), []).append(where)
            else:
                raise InputError(self.names.unknown_message(word, self.at(where)))
        return found

    # -- delimited text (audacity, csv, tsv, frames)

    def rows(self, text: str) -> list[tuple[int, list[str]]]:
        lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), start=1)]
        content = [(n, line) for n, line in lines if line and not line.startswith(("#", "\\"))]
        if not content:
            return []
        first = content[0][1]
        delimiter = next((d for d in ("\t", ";", ",") if d in first), None)
        rows = []
        for n, line in content:
            if delimiter is None:
                fields = line.split(None, 2)
            elif delimiter == "\t":
                fields = line.split("\t")
            else:
                try:
                    fields = next(csv.reader([line], delimiter=delimiter), [])
                except csv.Error as exc:
                    raise InputError(f"{self.at(f'line {n}')}: cannot split the line ({exc})") from None
            rows.append((n, [field.strip().strip('"').strip() for field in fields]))
        return rows

    def table(self, text: str, fmt: str | None) -> tuple[list[_Mark], set[str]]:
        rows = self.rows(text)
        if not rows:
            return [], set()
        n, first = rows[0]
        has_header = self._is_header(first)
        if fmt == "frames" or (fmt is None and has_header and self._is_frames_header(first)):
            if not has_header:
                raise InputError(
                    f"{self.at(f'line {n}')}: a frame table needs a header: time plus one column per source"
                )
            return self.frames(rows)
        if fmt == "json":
            raise InputError(f"{self.origin}: not JSON (it does not start with '{{')")
        columns = self._region_columns(first, n) if has_header else {"start": 0, "end": 1, "label": 2}
        return self.regions(rows[1:] if has_header else rows, columns), set()

    @staticmethod
    def _is_header(row: list[str]) -> bool:
        """Whether the first row is a header: its first field is not a time, and it names a column (start, end,
        label, ...) or holds nothing that looks like a number. So ``abc,2,vocals`` is a row with a bad start."""
        if not row or _TIMELIKE.fullmatch(row[0]):
            return False
        return any(_header_role(name) for name in row) or not any(_NUMBERISH.match(name) for name in row)

    @staticmethod
    def _is_frames_header(header: list[str]) -> bool:
        roles = [_header_role(name) for name in header]
        return not {"end", "duration", "label"} & set(roles) and roles[0] in ("time", "start")

    def _region_columns(self, header: list[str], n: int) -> dict[str, int]:
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            role = _header_role(name)
            if role is not None and role not in columns:
                columns[role] = index
        if "start" not in columns and "time" in columns:
            columns["start"] = columns["time"]
        missing = [role for role in ("start", "label") if role not in columns]
        if "end" not in columns and "duration" not in columns:
            missing.insert(1, "end (or duration)")
        if missing:
            raise InputError(
                f"{self.at(f'line {n}')}: the header {_short(', '.join(header), 60)} has no {' or '.join(missing)} "
                "column; name the columns start, end, label (or write time plus one 0/1 column per source)"
            )
        return columns

    def regions(self, rows: list[tuple[int, list[str]]], columns: dict[str, int]) -> list[_Mark]:
        marks = []
        needed = max(columns[role] for role in ("start", "label", "end", "duration") if role in columns) + 1
        for n, fields in rows:
            where = f"line {n}"
            if len(fields) < needed:
                if len(fields) == needed - 1 and columns.get("label") == needed - 1:
                    fields = [*fields, ""]
                else:
                    raise InputError(
                        f"{self.at(where)}: expected {needed} columns (start, end, label), found {len(fields)}"
                    )
            start = parse_time(fields[columns["start"]], where=f"{self.at(where)} start")
            if "end" in columns:
                end = parse_time(fields[columns["end"]], where=f"{self.at(where)} end", allow_open_end=True)
            else:
                end = round(start + parse_time(fields[columns["duration"]], where=f"{self.at(where)} duration"),
                            TIME_DIGITS)
            if end < start:
                raise InputError(
                    f"{self.at(where)}: the region ends ({format_time(end)} s) before it starts "
                    f"({format_time(start)} s); swap the two times"
                )
            for source, negative in self.sources_of(fields[columns["label"]], where):
                marks.append(_Mark(source, start, end, negative, where))
        return marks

    def frames(self, rows: list[tuple[int, list[str]]]) -> tuple[list[_Mark], set[str]]:
        header_line, header = rows[0]
        columns: dict[int, str] = {}
        for index, name in enumerate(header[1:], start=1):
            where = f"line {header_line} column {index + 1}"
            source, negative = self.names.resolve(name)
            if source is None:
                if not self.ignore_unknown:
                    raise InputError(self.names.unknown_message(name, self.at(where)))
                self.skipped.setdefault(name.strip().lower(), []).append(where)
            elif negative:
                raise InputError(f"{self.at(where)}: a frame table column names a source; {_short(name)} is a negation")
            elif source in columns.values():
                raise InputError(f"{self.at(where)}: a second column for {source}; keep one column per source")
            else:
                columns[index] = source
        times: list[float] = []
        states: list[dict[str, bool]] = []
        lines: list[str] = []
        for n, fields in rows[1:]:
            where = f"line {n}"
            if len(fields) != len(header):
                raise InputError(
                    f"{self.at(where)}: expected {len(header)} columns like the header, found {len(fields)}"
                )
            time = parse_time(fields[0], where=f"{self.at(where)} time")
            if times and time <= times[-1]:
                raise InputError(f"{self.at(where)}: time {format_time(time)} does not come after the row above")
            times.append(time)
            states.append({source: self._activity(fields[index], where) for index, source in columns.items()})
            lines.append(where)
        marks = []
        for source in columns.values():
            start: int | None = None
            for i, state in enumerate([*states, {source: False}]):
                if state[source] and start is None:
                    start = i
                elif not state[source] and start is not None:
                    end = times[i] if i < len(times) else math.inf
                    marks.append(_Mark(source, times[start], end, False, lines[start]))
                    start = None
        return marks, set(columns.values())

    def _activity(self, text: str, where: str) -> bool:
        value = text.strip().replace(",", ".")
        if not _SECONDS.fullmatch(value) or float(value) > 1:
            raise InputError(
                f"{self.at(where)}: {_short(text)} is not an activity; write 0 or 1 (or a value in [0, 1])"
            )
        return float(value) >= 0.5

    # -- json

    def json(self, text: str) -> tuple[list[_Mark], set[str], set[str], float | None]:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{self.origin}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{self.origin}: not valid JSON ({type(exc).__name__})") from None
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
            raise InputError(
                f'{self.origin}: expected a JSON object '
                '{"duration": ..., "sources": {"vocals": [[start, end], ...]}}'
            )
        duration = data.get("duration")
        if duration is not None:
            duration = self._json_time(duration, "duration")
            if duration == 0:
                raise InputError(f"{self.origin}: duration must be more than 0 seconds")
        free_names = data.get("unconstrained", [])
        if not isinstance(free_names, list) or not all(isinstance(name, str) for name in free_names):
            raise InputError(f'{self.origin}: "unconstrained" must be a list of source names')
        free = set()
        for i, name in enumerate(free_names):
            source, _ = self.names.resolve(name)
            if source is None:
                if not self.ignore_unknown:
                    raise InputError(self.names.unknown_message(name, self.at(f"unconstrained[{i}]")))
                self.skipped.setdefault(name.strip().lower(), []).append(f"unconstrained[{i}]")
            else:
                free.add(source)
        marks: list[_Mark] = []
        constrained = set()
        for name, spans in data["sources"].items():
            where = f"sources.{name}"
            found = self.sources_of(name, where)
            if not isinstance(spans, list):
                raise InputError(f"{self.at(where)}: expected a list of [start, end] pairs in seconds")
            for i, span in enumerate(spans):
                if not isinstance(span, list) or len(span) != 2:
                    raise InputError(f"{self.at(f'{where}[{i}]')}: expected [start, end] in seconds")
                start = self._json_time(span[0], f"{where}[{i}] start")
                end = math.inf if span[1] is None else self._json_time(span[1], f"{where}[{i}] end", open_end=True)
                if end < start:
                    raise InputError(
                        f"{self.at(f'{where}[{i}]')}: the region ends before it starts; swap the two times"
                    )
                marks += [_Mark(source, start, end, negative, f"{where}[{i}]") for source, negative in found]
            constrained |= {source for source, _ in found}
        return marks, constrained, free, duration

    def _json_time(self, value: Any, where: str, open_end: bool = False) -> float:
        if isinstance(value, str):
            return parse_time(value, where=self.at(where), allow_open_end=open_end)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{self.at(where)}: expected a time in seconds, found {_short(json.dumps(value))}")
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        return _checked_seconds(seconds, str(value), self.at(where))


# ---------------------------------------------------------------- building from data


def labels_from_regions(
    regions: Mapping[str, Iterable[tuple[float, float]]],
    *,
    sources: Sequence[str] = DEFAULT_SOURCES,
    duration: float | None = None,
    origin: str = "regions",
) -> Labels:
    """Labels from active regions per source (seconds; ``inf`` end = open); missing sources are unconstrained.

    ``origin`` names where the regions came from in the warnings.
    """
    unknown = [name for name in regions if name not in sources]
    if unknown:
        raise ValueError(f"regions for unknown sources {unknown}; the sources are {list(sources)}")
    marks = []
    for source, spans in regions.items():
        for i, (start, end) in enumerate(spans):
            where = f"{source}[{i}]"
            start = _checked_seconds(float(start), str(start), where)
            end = math.inf if math.isinf(end) and end > 0 else _checked_seconds(float(end), str(end), where)
            if end < start:
                raise ValueError(f"region {where} ends before it starts: {(start, end)}")
            marks.append(_Mark(source, start, end, False, where))
    return _build(
        marks,
        origin=origin,
        sources=sources,
        duration=None if duration is None else round(float(duration), TIME_DIGITS),
        margin=0.0,
        constrained=set(regions),
    )


def guard_silences(labels: Labels, seconds: float) -> Labels:
    """The labels with every silence of a constrained source shortened by ``seconds`` at each border with an
    active region, but never by more than a quarter of its length (as the adaptation's guard band): rough
    borders then cost no sound of a playing source, and a short rest still counts. The song's own start and
    end are no borders; unconstrained sources are left as they are."""
    if seconds <= 0:
        return labels
    regions = {}
    for source, spans in labels.regions.items():
        if source in labels.unconstrained or not spans:
            regions[source] = spans
            continue
        out = []
        for index, (start, end) in enumerate(spans):
            before = start - (spans[index - 1][1] if index else 0.0)
            after = (spans[index + 1][0] if index + 1 < len(spans)
                     else math.inf if labels.duration is None else labels.duration) - end
            out.append((start - min(seconds, before / 4), end + min(seconds, after / 4)))
        regions[source] = _finish(out, 0.0, labels.duration)
    return Labels(regions=regions, unconstrained=labels.unconstrained, duration=labels.duration,
                  warnings=labels.warnings)


def grouped_labels(labels: Labels, groups: Mapping[str, Sequence[str]]) -> Labels:
    """Labels for groups of sources (a stem that holds several, such as an instrumental): each group is active
    wherever one of its sources is, and unconstrained if one of them is (it may play anywhere). ``groups``: name
    -> sources of ``labels``; an empty group is silent throughout. The warnings are those of ``labels``."""
    regions: dict[str, tuple[Region, ...]] = {}
    free = []
    whole = ((0.0, labels.duration),) if labels.duration is not None else ()
    for name, members in groups.items():
        if any(source in labels.unconstrained for source in members):
            free.append(name)
            regions[name] = whole
        else:
            regions[name] = tuple(_merge(span for source in members for span in labels.regions[source]))
    return Labels(regions=regions, unconstrained=tuple(free), duration=labels.duration, warnings=labels.warnings)


def rests(labels: Labels, source: str) -> tuple[Region, ...]:
    """Where a source is labelled silent: the gaps between its regions within the song (none when unconstrained
    or when the song's length is unknown and it plays to an open end)."""
    if source in labels.unconstrained:
        return ()
    return tuple(_subtract([(0.0, labels.extent())], list(labels.regions[source])))


def require_playing(labels: Labels, origin: str) -> None:
    """Refuse labels under which no labelled source plays anywhere: adapting to them would only train the
    labelled sources to silence (usually the labels of another song)."""
    labelled = [source for source in labels.sources if source not in labels.unconstrained]
    if labelled and not any(labels.regions[source] for source in labelled):
        raise InputError(
            f"{origin}: no labelled source ({', '.join(labelled)}) plays anywhere in the song "
            f"({labels.extent():.1f} s), so adapting would only train them to silence; check the labels belong to "
            "this song (to silence a source on purpose, also label where another one plays)"
        )


def activation_matrix(labels: Labels, samplerate: float, frames: int) -> np.ndarray:
    """A (sources, frames) float32 matrix of 0/1; sample ``i`` covers ``[i / rate, (i + 1) / rate)``.

    A region ``[start, end)`` covers samples ``round(start * rate)`` to ``round(end * rate)`` (excluded);
    unconstrained rows are all 1.
    """
    return activation_rows(labels, samplerate, 0, frames, frames)


def activation_rows(labels: Labels, samplerate: float, begin: int, end: int, frames: int) -> np.ndarray:
    """Columns ``begin`` to ``end`` (excluded) of the activation matrix of a song of ``frames`` samples."""
    matrix = np.zeros((len(labels.sources), end - begin), dtype=np.float32)
    for row, source in enumerate(labels.sources):
        if source in labels.unconstrained:
            matrix[row] = 1.0
            continue
        for start, stop in labels.regions[source]:
            first = max(_sample(start, samplerate, frames), begin)
            last = min(_sample(stop, samplerate, frames), end)
            if first < last:
                matrix[row, first - begin : last - begin] = 1.0
    return matrix


def _sample(seconds: float, samplerate: float, frames: int) -> int:
    return frames if math.isinf(seconds) else min(frames, math.floor(seconds * samplerate + 0.5))


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The runs ``[start, stop)`` of a (frames,) row where ``mask`` is true."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask, dtype=bool).astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def labels_from_matrix(matrix: np.ndarray, samplerate: float, *, sources: Sequence[str] = DEFAULT_SOURCES) -> Labels:
    """The inverse of :func:`activation_matrix`: every row's runs of values >= 0.5 as regions.

    Exact at sample resolution for rates below 1 MHz: ``activation_matrix(labels_from_matrix(m, r), r, frames)``
    gives ``m`` back. Every source is constrained; the duration is ``frames / samplerate``.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != len(sources):
        raise ValueError(f"expected a ({len(sources)}, frames) matrix, got shape {matrix.shape}")
    frames = matrix.shape[1]
    duration = round(frames / samplerate, TIME_DIGITS)
    regions = {}
    for source, row in zip(sources, matrix >= 0.5):
        regions[source] = tuple(
            (round(a / samplerate, TIME_DIGITS), round(b / samplerate, TIME_DIGITS)) for a, b in runs(row)
        )
    return Labels(regions=regions, unconstrained=(), duration=duration if frames else None)


def coverage(labels: Labels, end: float, columns: int) -> dict[str, np.ndarray]:
    """Per source, the active fraction of each of ``columns`` equal slices of ``[0, end]`` (for timelines)."""
    edges = np.linspace(0.0, end, columns + 1)
    result = {}
    for source in labels.sources:
        if source in labels.unconstrained:
            result[source] = np.ones(columns)
            continue
        active = np.zeros(columns)
        for start, stop in labels.regions[source]:
            overlap = np.clip(np.minimum(edges[1:], stop) - np.maximum(edges[:-1], start), 0.0, None)
            active += overlap
        result[source] = active / np.maximum(np.diff(edges), 1e-12)
    return result


# ---------------------------------------------------------------- writing


def labels_json(labels: Labels) -> dict:
    """``{"duration", "sources": {name: [[start, end], ...]}, "unconstrained": [...]}``; an open end is null."""
    return {
        "duration": labels.duration,
        "sources": {
            source: [[start, None if math.isinf(end) else end] for start, end in spans]
            for source, spans in labels.regions.items()
        },
        "unconstrained": list(labels.unconstrained),
    }


def _region_rows(labels: Labels) -> list[tuple[float, float, str]]:
    """The rows a region list format needs to describe ``labels`` exactly, sorted by time."""
    rows = []
    for order, source in enumerate(labels.sources):
        if source in labels.unconstrained:
            continue
        spans = labels.regions[source]
        if spans:
            rows += [(start, end, order, source) for start, end in spans]
        else:  # constrained but silent throughout
            end = labels.duration if labels.duration is not None else math.inf
            rows.append((0.0, end, order, f"no {source}"))
    return [(start, end, text) for start, end, _, text in sorted(rows)]


def _frame_rows(labels: Labels) -> tuple[list[str], list[tuple[float, list[int]]]]:
    columns = [s for s in labels.sources if s not in labels.unconstrained]
    times = {0.0} | {t for s in columns for span in labels.regions[s] for t in span if math.isfinite(t)}
    if labels.duration is not None:
        times.add(labels.duration)
    rows = []
    for time in sorted(times):
        rows.append((time, [int(any(a <= time < b for a, b in labels.regions[s])) for s in columns]))
    return columns, rows


def format_labels(labels: Labels, fmt: str) -> str:
    """The labels as text in one of :data:`LABEL_FORMATS`; reading it back gives the same labels.

    Region formats carry no duration: read them with the same duration. Unconstrained sources are left out
    (the JSON lists them).
    """
    if fmt == "json":
        data = labels_json(labels)
        sources = ",\n".join(f"    {json.dumps(name)}: {json.dumps(spans)}" for name, spans in data["sources"].items())
        return (
            f'{{\n  "duration": {json.dumps(data["duration"])},\n  "sources": {{\n{sources}\n  }},\n'
            f'  "unconstrained": {json.dumps(data["unconstrained"])}\n}}\n'
        )
    if fmt == "audacity":
        lines = [
            f"{start:.{TIME_DIGITS}f}\t{format_time(end) if math.isinf(end) else f'{end:.{TIME_DIGITS}f}'}\t{text}"
            for start, end, text in _region_rows(labels)
        ]
    elif fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        lines = [sep.join(("start", "end", "label"))]
        lines += [sep.join((format_time(a), format_time(b), text)) for a, b, text in _region_rows(labels)]
    elif fmt == "frames":
        columns, rows = _frame_rows(labels)
        lines = [",".join(["time", *columns])]
        lines += [",".join([format_time(time), *map(str, values)]) for time, values in rows]
    else:
        raise InputError(f"unknown labels format {_short(fmt)}; use one of {', '.join(LABEL_FORMATS)}")
    return "".join(line + "\n" for line in lines)


__all__ = [
    "LABEL_FORMATS",
    "SYNONYMS",
    "Labels",
    "activation_matrix",
    "coverage",
    "format_clock",
    "format_labels",
    "format_time",
    "grouped_labels",
    "guard_silences",
    "labels_from_matrix",
    "labels_from_regions",
    "labels_json",
    "name_source",
    "parse_labels",
    "parse_time",
    "read_labels",
    "rests",
    "source_for_name",
    "tick_label",
    "tick_step",
]

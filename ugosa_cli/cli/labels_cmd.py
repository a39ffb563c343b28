"""``ugosa labels``: show, convert and derive activation labels (where each instrument plays)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from ugosa_cli.audio import common_rate_and_length
from ugosa_cli.cli import common
from ugosa_cli.cli.guidance import IgnoreUnknown, LabelsFormat, MapOpt, Margin
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import check_target, file_target, resolved, write_atomic
from ugosa_cli.labels import (
    LABEL_FORMATS,
    Labels,
    coverage,
    format_clock,
    format_labels,
    labels_json,
    parse_time,
    read_labels,
    source_for_name,
    tick_label,
    tick_step,
)
from ugosa_cli.plot import PLOT_SUFFIXES
from ugosa_cli.report import Envelope, lanes_figure
from ugosa_cli.sources import DEFAULT_SOURCES
from ugosa_cli.stem_activity import DEFAULT_MIN_GAP, DEFAULT_MIN_REGION, DEFAULT_THETA, detect_activations

app = typer.Typer(
    help=(
        "Activation labels: where each instrument plays. Read Audacity label tracks, CSV/TSV tables, "
        "frame-wise 0/1 tables or JSON; show them as a timeline, convert them, or derive them from stems."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
)

LabelsFile = Annotated[
    str, typer.Argument(help="The labels file, or - for standard input.", show_default=False, metavar="FILE")
]
AudioOpt = Annotated[Optional[str], typer.Option("--audio", help="The song: its length clips the labels.")]
DurationOpt = Annotated[
    Optional[str], typer.Option("--duration", help="The song's length instead of --audio: seconds, mm:ss or hh:mm:ss.")
]
OutputOpt = Annotated[
    Optional[str],
    typer.Option(
        "--output", "-o", help="Write to this file (atomically) instead of stdout; an existing file is refused unless "
        "--force.",
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace the --output file if it exists (an input is never replaced).")
]
_STEM_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
_SUFFIX_FORMATS = {".txt": "audacity", ".csv": "csv", ".tsv": "tsv", ".json": "json"}
_GLYPHS = {"active": "█", "partial": "▒", "silent": "·", "free": "░", "tick": "┬", "rule": "─"}
_ASCII_GLYPHS = {"active": "#", "partial": "+", "silent": ".", "free": "~", "tick": "+", "rule": "-"}
_STYLES = {"active": "green", "partial": "yellow", "silent": "dim", "free": "cyan"}
_SILENT = 0.01  # a timeline column covered this much or less shows as silent
_ACTIVE = 0.99  # ... and this much or more as active


def _song_duration(audio: str | None, duration: str | None, labels_file: str) -> float | None:
    if audio is not None and duration is not None:
        raise InputError("give the song's length with --audio or --duration, not both")
    if audio is not None:
        if audio == "-" and labels_file == "-":
            raise InputError("the labels and --audio cannot both come from standard input")
        return common.open_audio(audio).duration
    if duration is not None:
        seconds = parse_time(duration, where="--duration")
        if seconds <= 0:
            raise InputError(f"--duration {duration}: must be more than 0 seconds")
        return seconds
    return None


def _read(
    file: str,
    *,
    audio: str | None,
    duration: str | None,
    fmt: str | None,
    mapping: list[str] | None,
    ignore_unknown: bool,
    margin: float,
) -> Labels:
    labels = read_labels(
        file,
        fmt=fmt,
        mapping=common.parse_pairs(mapping or [], "--map"),
        ignore_unknown=ignore_unknown,
        margin=margin,
        duration=_song_duration(audio, duration, file),
    )
    for line in labels.warnings:
        common.warn(line)
    return labels


def _output_format(fmt: str | None, output: Path | None, option: str) -> str:
    if fmt is None and output is not None:
        fmt = _SUFFIX_FORMATS.get(output.suffix.lower())
        if fmt is None:
            raise InputError(f"{output}: cannot tell the format from the name; choose one with {option}")
    fmt = fmt or "audacity"
    if fmt not in LABEL_FORMATS:
        raise InputError(f"{option} {fmt}: unknown format; use one of {', '.join(LABEL_FORMATS)}")
    return fmt


def output_target(output: str | None, inputs: list[tuple[Path, str]], force: bool) -> tuple[Path, Path] | None:
    """The ``--output`` file (None: stdout) and the resolved folder it must land in, checked before any work:
    a file name (not ``dir/``), never over an input, over a file only with ``force``, and short enough."""
    if output is None:
        return None
    target = file_target(output, "--output", "labels.txt")
    check_target(target, inputs, force=force, option="--output")
    return target, resolved(target.parent)


def _write(text: str, output: tuple[Path, Path] | None) -> None:
    """The result on stdout, or written atomically to the ``output`` file (:func:`output_target`) whose path goes
    to stdout."""
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target, folder = output
    write_atomic(target, text.encode("utf-8"), folder)
    common.emit_path(target)


# ---------------------------------------------------------------- show


def _column(seconds: float, extent: float, width: int) -> int:
    """The timeline column where a region starting at ``seconds`` first shows in its bar.

    Column ``c`` covers ``[c, c + 1) * extent / width``; it shows a region once more than ``_SILENT`` of it is
    covered, so the region's first mark is at ``floor(x + _SILENT)`` for ``x = seconds / extent * width``.
    ``extent`` itself maps to ``width``, just past the last column.
    """
    return math.floor(seconds / extent * width + _SILENT)


def _ruler(extent: float, width: int, indent: int, glyphs: dict[str, str]) -> list[str]:
    """Tick labels and a rule of ``width + 1`` cells (the last one is the end), ticks where the bars put their times."""
    widest = len(tick_label(extent, 1 if extent >= 1 else 0.1)) + 2
    step = tick_step(extent, width, widest)
    labels = [" "] * (width + widest)
    ticks = [glyphs["rule"]] * (width + 1)
    for k in range(math.floor(extent / step + 1e-9) + 1):
        column = _column(k * step, extent, width)
        text = tick_label(k * step, step)
        free = all(c == " " for c in labels[max(0, column - 1) : column + len(text)])
        if column + len(text) <= width + widest and free:
            labels[column : column + len(text)] = text
            ticks[column] = glyphs["tick"]
    return [" " * indent + "".join(labels).rstrip(), " " * indent + "".join(ticks)]


def _summary(labels: Labels, source: str) -> str:
    if source in labels.unconstrained:
        return "unconstrained (no labels)"
    spans = labels.regions[source]
    if not spans:
        return "silent throughout"
    count = f"{len(spans)} region{'s' if len(spans) != 1 else ''}"
    active = labels.active_seconds(source)
    if math.isinf(active):
        return f"{count}, active to the end"
    share = f" ({100 * active / labels.duration:.0f}%)" if labels.duration else ""
    return f"{count}, {format_clock(active)}{share}"


def _timeline(labels: Labels, console_width: int, glyphs: dict[str, str]) -> list[Text]:
    extent = labels.extent() or 1.0
    name_width = max(len(common.printable(s)) for s in labels.sources) + 2
    summaries = {s: _summary(labels, s) for s in labels.sources}
    summary_width = max(len(text) for text in summaries.values()) + 2
    width = max(10, console_width - name_width - summary_width)
    if labels.duration is not None:
        head = f"duration {format_clock(labels.duration)}"
    else:
        head = f"duration unknown (give --audio or --duration): shown up to the last label, {format_clock(extent)}"
    lines = [Text(head)]
    lines += [Text(line) for line in _ruler(extent, width, name_width, glyphs)]
    fractions = coverage(labels, extent, width)
    for source in labels.sources:
        row = Text(common.printable(source).ljust(name_width))
        for value in fractions[source]:
            kind = "free" if source in labels.unconstrained else (
                "active" if value >= _ACTIVE else "silent" if value <= _SILENT else "partial"
            )
            row.append(glyphs[kind], style=_STYLES[kind])
        row.append("  " + summaries[source])
        lines.append(row)
    legend = Text(" " * name_width)
    for kind, meaning in (("active", "active"), ("partial", "partly active"), ("silent", "silent"),
                          ("free", "unconstrained")):
        legend.append(glyphs[kind], style=_STYLES[kind])
        legend.append(f" {meaning}   ")
    lines.append(legend)
    return lines


def _plot(labels: Labels, audio: str | None, target: Path) -> None:
    """Draw the labels' lanes (over the song's waveform with ``audio``) into ``target``, atomically."""
    envelope = None
    if audio is not None:
        song = common.open_audio(audio)
        envelope = Envelope(song.frames, song.samplerate)
        for block in song.blocks():
            envelope.add(block)
    write_atomic(target, lanes_figure(labels, envelope).encode(target.suffix))
    common.emit_path(target)


@app.command("show", no_args_is_help=True)
def show(
    file: LabelsFile,
    audio: AudioOpt = None,
    duration: DurationOpt = None,
    plot: Annotated[
        Optional[Path],
        typer.Option(
            "--plot", metavar="FILE.png|FILE.svg",
            help="Draw the labels as lanes, one per source (over the song's waveform with --audio), into a PNG or "
            "SVG picture (the extension decides) instead of the timeline; an existing picture is replaced.",
        ),
    ] = None,
    json_out: common.JsonOut = False,
    labels_format: LabelsFormat = None,
    mapping: MapOpt = None,
    ignore_unknown: IgnoreUnknown = False,
    margin: Margin = 0.0,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Show the labels as a per-source timeline (or as JSON with --json, or as a picture with --plot)."""
    common.configure(quiet=quiet, debug=debug)
    if plot is not None:
        if json_out:
            raise InputError("--plot and --json: choose one")
        if plot.suffix.lower() not in PLOT_SUFFIXES:
            raise InputError(f"--plot {plot}: name a .png or .svg file; the extension decides the format")
        read = ((file, "the labels file"), (audio, "the --audio song"))
        check_target(plot, [(Path(name), what) for name, what in read if name not in (None, "-")], force=True,
                     option="--plot")
    labels = _read(
        file, audio=audio, duration=duration, fmt=labels_format, mapping=mapping,
        ignore_unknown=ignore_unknown, margin=margin,
    )
    if plot is not None:
        _plot(labels, audio, plot)
        return
    if json_out:
        common.emit_json(labels_json(labels))
        return
    console = Console(file=sys.stdout, highlight=False, no_color=common.no_color())
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "".join(_GLYPHS.values()).encode(encoding)
        glyphs = _GLYPHS
    except (UnicodeEncodeError, LookupError):
        glyphs = _ASCII_GLYPHS
    for line in _timeline(labels, console.width, glyphs):
        console.print(line, soft_wrap=True)


# ---------------------------------------------------------------- convert


@app.command("convert", no_args_is_help=True)
def convert(
    file: LabelsFile,
    to: Annotated[
        Optional[str],
        typer.Option(
            "--to", help=f"Output format: {', '.join(LABEL_FORMATS)} (default: from -o's suffix, else audacity)."
        ),
    ] = None,
    output: OutputOpt = None,
    audio: AudioOpt = None,
    duration: DurationOpt = None,
    labels_format: LabelsFormat = None,
    mapping: MapOpt = None,
    ignore_unknown: IgnoreUnknown = False,
    margin: Margin = 0.0,
    force: ForceOpt = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Convert labels between formats (Audacity labels, CSV, TSV, frame table, JSON)."""
    common.configure(quiet=quiet, debug=debug)
    read = ((file, "the labels file it converts"), (audio, "the --audio song"))
    inputs = [(Path(name), what) for name, what in read if name is not None and name != "-"]
    target = output_target(output, inputs, force)
    fmt = _output_format(to, None if target is None else target[0], "--to")
    labels = _read(
        file, audio=audio, duration=duration, fmt=labels_format, mapping=mapping,
        ignore_unknown=ignore_unknown, margin=margin,
    )
    _write(format_labels(labels, fmt), target)


# ---------------------------------------------------------------- from-stems


def _stem_files(paths: list[Path]) -> dict[str, Path]:
    """Source -> file: from a track folder (files named after the sources) or from files named after them."""
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        found = {
            path.stem.lower(): path
            for path in sorted(folder.iterdir())
            if path.is_file() and path.suffix.lower() in _STEM_SUFFIXES and path.stem.lower() in DEFAULT_SOURCES
        }
        if not found:
            raise InputError(
                f"{folder}: no stems found; expected {', '.join(f'{s}.wav' for s in DEFAULT_SOURCES)} (or .flac, ...)"
            )
        return {source: found[source] for source in DEFAULT_SOURCES if source in found}
    files: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            raise InputError(f"{path}: is a folder; give one track folder alone, or audio files")
        source = source_for_name(path.stem)
        if source is None:
            raise InputError(
                f"{path}: cannot tell which source this stem is; name the files after the sources "
                f"({', '.join(DEFAULT_SOURCES)}), e.g. vocals.wav"
            )
        if source in files:
            raise InputError(f"{path}: a second stem for {source} (first: {files[source]}); give one file per source")
        files[source] = path
    return files


@app.command("from-stems", no_args_is_help=True)
def from_stems(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Stems named after the sources (drums.wav bass.wav ...), or one track folder holding them.",
                       show_default=False, metavar="STEMS"),
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"Output format: {', '.join(LABEL_FORMATS)}.")
    ] = "audacity",
    theta: Annotated[
        float, typer.Option("--theta", help="Activity threshold of the normalised envelope (paper: 0.01).")
    ] = DEFAULT_THETA,
    min_region: Annotated[
        float, typer.Option("--min-region", help="Drop active regions shorter than this (seconds).")
    ] = DEFAULT_MIN_REGION,
    min_gap: Annotated[
        float, typer.Option("--min-gap", help="Fill silences shorter than this (seconds).")
    ] = DEFAULT_MIN_GAP,
    output: OutputOpt = None,
    force: ForceOpt = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Detect where each source plays from its isolated stem (the paper's method); Audacity labels by default."""
    common.configure(quiet=quiet, debug=debug)
    fmt = _output_format(fmt, None, "--format")
    if min_region < 0 or min_gap < 0:
        raise InputError("--min-region and --min-gap must be 0 or more seconds")
    files = _stem_files(paths)
    target = output_target(output, [(path, f"the {source} stem") for source, path in files.items()], force)
    audio = {}
    for source, path in files.items():
        common.info(f"reading {source}: {path}")
        audio[source] = common.open_audio(path).read()
    samplerate, length, notes = common_rate_and_length(audio, "stems")
    for note in notes:
        common.warn(note)
    stems = {source: stem.samples[:, :length] for source, stem in audio.items()}
    labels = detect_activations(stems, samplerate, theta=theta, min_region=min_region, min_gap=min_gap)
    for line in labels.warnings:
        common.warn(line)
    _write(format_labels(labels, fmt), target)

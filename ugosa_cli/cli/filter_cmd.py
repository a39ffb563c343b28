"""``ugosa filter``: the labels applied to stems from any separator."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ugosa_cli.audio import STDIN, AudioFile, check_format, collect_stems
from ugosa_cli.cli import common, guidance
from ugosa_cli.cli.separate_cmd import parent_name, track_name
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import ensure_writable
from ugosa_cli.labels import Labels
from ugosa_cli.output import REPORT_PAGE, StemWriter, check_batch, write_separation
from ugosa_cli.postfilters import POST_FILTERS
from ugosa_cli.report import ReportRecorder, players, report_pages, write_report
from ugosa_cli.separation import ProgressCallback, stem_channel_blocks
from ugosa_cli.stemfilter import MatchedStems, StemLayout, filter_stems, layout_files, residual_note

FILTER_TEMPLATE = "{track}/{stem}.{ext}"


def _progress(blocks: Iterable[np.ndarray], callback: ProgressCallback, total: int) -> Iterator[np.ndarray]:
    done = 0
    for block in blocks:
        done += block.shape[-1]
        callback(done, total)
        yield block


def filter_command(
    arguments: Annotated[
        list[str],
        typer.Argument(
            help="The song (the mixture the stems were separated from; '-' reads it from stdin), then more stem "
            "files if you like (as --stems).",
            show_default=False, metavar="SONG",
        ),
    ],
    stems: Annotated[
        Optional[list[str]],
        typer.Option(
            "--stems",
            help="A folder of <stem>.wav (or .flac, ...) files from any separator, or stem files (repeat the option, "
            "or list them after the song; NAME=FILE names a file's source). Names are read like labels: vocals, "
            "vox, song_(Vocals), no_vocals, instrumental, ...",
            metavar="DIR|FILE",
            show_default=False,
        ),
    ] = None,
    labels: guidance.LabelsOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode", metavar="resplit|gate",
            help="resplit: share the mixture, frame by frame, among the stems labelled active (a resting stem "
            "comes out silent, its sound handed to the playing ones); gate: silence each stem outside its labelled "
            "regions (with short fades).",
        ),
    ] = "resplit",
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Folder the filtered stems are written under.")
    ] = Path("filtered"),
    filename: Annotated[
        str,
        typer.Option(
            "--filename", metavar="TEMPLATE",
            help="Stem path template under --out; fields {model} (the --mode) {parent} (the song's folder) {track} "
            "{stem} {ext}.",
        ),
    ] = FILTER_TEMPLATE,
    fmt: common.FormatOpt = "wav",
    mp3: common.Mp3Opt = False,
    bits: common.BitsOpt = None,
    clip_mode: common.ClipModeOpt = "rescale",
    labels_format: guidance.LabelsFormat = None,
    mapping: guidance.MapOpt = None,
    ignore_unknown: guidance.IgnoreUnknown = False,
    margin: guidance.Margin = 0.0,
    downmix: common.Downmix = False,
    report_page: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write a report page beside the filtered stems (report.html): the waveform with the labels, "
            "each stem's level before and after, and players for the song and both sets of stems. One HTML file "
            "that works offline; its path is printed after the stems'.",
        ),
    ] = False,
    json_out: common.JsonOut = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Apply the labels to stems made by any separator, and print the written paths (or JSON with --json).

    Stems at another rate or length than the song are resampled, trimmed or padded to it, with a warning; stems
    named after no source the labels know are sources of their own (unconstrained unless labelled). Sources no
    stem holds (only vocals and drums given) are left to what the stems miss of the song, which is not written.
    """
    common.configure(quiet=quiet, debug=debug)
    if mode not in POST_FILTERS:
        raise InputError(f"--mode {mode}: use one of {', '.join(POST_FILTERS)}")
    if labels is None:
        raise InputError("filter needs --labels FILE: where each instrument plays (see `ugosa labels --help`)")
    track, specs = arguments[0], [*(stems or []), *arguments[1:]]
    if not specs:
        raise InputError("no stems to filter: give a folder with --stems DIR, or the stem files (--stems FILE ...)")
    spec = common.output_spec(out, filename, fmt=fmt, mp3=mp3, bits=bits, clip_mode=clip_mode)
    song = None if track == STDIN else Path(track)
    layout, stem_files, notes = layout_files(collect_stems(specs, "--stems"),
                                             common.parse_pairs(mapping or [], "--map"), song)
    renamed = [f"{stem} <- {path}" for stem, path in stem_files.items() if layout.given[stem] != stem]
    for line in notes + ([f"stems: {', '.join(renamed)}"] if renamed else []):
        common.info(line)
    mixture = common.open_audio(track)
    check_format(spec.fmt, mixture.samplerate)
    label_options = guidance.LabelOptions(labels_format, mapping or [], ignore_unknown, margin)
    song_labels = guidance.read_song_labels(labels, label_options, layout.vocabulary, mixture.duration)
    ensure_writable(out)
    paths = spec.paths(model=mode, track=track_name(track), stems=layout.stems, parent=parent_name(track))
    inputs = [(path, f"the {stem} stem {path}") for stem, path in stem_files.items()]
    inputs += [(Path(name), f"the {what} {name}") for name, what in ((track, "input"), (labels, "labels file"))
               if name != STDIN]
    page = report_pages([(track, paths)])[track] if report_page else None
    check_batch([(track, {**paths, REPORT_PAGE: page} if page else paths)], inputs, filename)
    matched = MatchedStems(mixture, [common.open_audio(path) for path in stem_files.values()], downmix=downmix)
    for note in matched.notes:
        common.warn(note)
    protect = tuple(stem_files.values()) + (() if song is None else (song,))
    recorder = ReportRecorder(layout.stems, mixture.samplerate, mixture.frames) if page else None
    with common.Reporter() as reporter:
        task = reporter.add(f"filtering {track_name(track)}", mixture.frames)
        blocks = filter_stems(matched, layout, song_labels, mode, tap=recorder.before.tap if recorder else None)
        blocks = _progress(recorder.after.tap(blocks) if recorder else blocks, reporter.callback(task), mixture.frames)
        with StemWriter(paths, mixture.samplerate, matched.channels, spec, protect) as writer:
            write_separation(blocks, layout.stems, writer)
    note, warning = residual_note(matched.residual_db, layout, mode)
    (common.warn if warning else common.info)(note)
    if page is not None and recorder is not None:
        recorder.complete(lambda: iter(()), stem_channel_blocks(mixture, downmix=downmix))
        _write_page(page, recorder, layout, song_labels, track, mode, mixture, paths, stem_files,
                    [*matched.notes, note], spec.resolved_root)
    residual = matched.residual_db
    record = {
        "input": track, "track": track_name(track), "mode": mode,
        "samplerate": mixture.samplerate, "channels": mixture.channels, "duration": mixture.duration,
        "stems": {stem: str(path) for stem, path in paths.items()},
        "inputs": {stem: str(path) for stem, path in stem_files.items()},
        "holds": {stem: list(layout.holds[stem]) for stem in layout.stems},
        "residual_db": None if residual is None else round(max(residual, -120.0), 2),
        **({"report": str(page)} if page else {}),
    }
    if json_out:
        common.emit_json(record)
    else:
        for path in [*paths.values(), *([page] if page else [])]:
            common.emit_path(path)


def _write_page(
    page: Path, recorder: ReportRecorder, layout: StemLayout, labels: Labels, track: str, mode: str,
    mixture: AudioFile, paths: dict[str, Path], stem_files: dict[str, Path], notes: list[str], inside: Path,
) -> None:
    """The report page of a filtering: the stems given against the filtered ones."""
    held = ", ".join(stem if layout.holds[stem] == (stem,) else f"{stem} ({', '.join(layout.holds[stem])})"
                     for stem in layout.stems)
    given = {f"{stem}: {path.name}": path for stem, path in stem_files.items()}
    common.info(f"writing the report page {page}")
    write_report(page, recorder.report(
        track_name(track), "filter", names=("given", mode), labels=layout.stem_labels(labels),
        facts=[("filter", mode), ("stems", held), ("song", f"{mixture.duration:.1f} s at {mixture.samplerate} Hz")],
        players=players(page, None if track == STDIN else track, {"written": paths, "given": given}), notes=notes,
    ), inside=inside)

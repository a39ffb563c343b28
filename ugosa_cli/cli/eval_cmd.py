"""``ugosa eval``: score estimated stems against reference stems (BSSEval v4, MDX SDR, PES/EPS)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table
from rich.text import Text

from ugosa_cli.audio import (
    Audio,
    collect_stems,
    common_rate_and_length,
    fit_length,
    fit_notes,
    match_channels,
    resample,
)
from ugosa_cli.cli import common, guidance
from ugosa_cli.errors import InputError
from ugosa_cli.metrics import METRICS, check_frames, evaluate_stems
from ugosa_cli.sources import DEFAULT_SOURCES

_HEADINGS = {"MDX_SDR": "MDX SDR"}

def pair_stems(references: dict[str, Path], estimates: dict[str, Path], wanted: list[str]) -> list[str]:
    """The stem names to score: ``wanted``, or every estimate; each must have a reference and an estimate."""
    if wanted:
        for name in wanted:
            for kind, stems in (("reference", references), ("estimate", estimates)):
                if name not in stems:
                    raise InputError(f"--sources {name}: no {kind} stem of that name (have: {', '.join(stems)})")
        return wanted
    unmatched = [name for name in estimates if name not in references]
    if unmatched:
        raise InputError(
            f"estimate stems without a reference of the same name: {', '.join(unmatched)} "
            f"(references: {', '.join(references)}); rename the files or choose with --sources"
        )
    order = {name: i for i, name in enumerate(DEFAULT_SOURCES)}
    return sorted(estimates, key=lambda name: (order.get(name, len(order)), name))


def reconcile(
    references: dict[str, Audio], estimates: dict[str, Audio]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int, list[str]]:
    """Bring every stem to the references' rate, length and channel count; returns arrays, rate and notes."""
    rate, length, notes = common_rate_and_length(references, "reference stems")
    channels = max(audio.channels for audio in references.values())
    refs = {name: _fit_channels(audio, channels, "reference", notes)[:, :length] for name, audio in references.items()}
    ests = {}
    for name, audio in estimates.items():
        notes += fit_notes(audio, rate, length, "the references'")
        samples = fit_length(resample(audio.samples, audio.samplerate, rate), length)
        ests[name] = _fit_channels(Audio(samples, rate, audio.source), channels, "estimate", notes)
    return refs, ests, rate, notes


def _fit_channels(audio: Audio, channels: int, kind: str, notes: list[str]) -> np.ndarray:
    if audio.channels == channels:
        return audio.samples
    if audio.channels != 1 and (channels, audio.channels) != (1, 2):
        raise InputError(
            f"{audio.source}: {audio.channels} channels, but the references have {channels}; "
            f"give every stem the same channel layout"
        )
    notes.append(f"{audio.source}: {kind} with {audio.channels} channel(s) converted to {channels}")
    return match_channels(audio.samples, channels, label=audio.source)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _print_table(result: dict) -> None:
    settings = result["settings"]
    table = Table(
        title=(
            f"dB; BSSEval v4: median of {settings['frames']} frame(s), win {settings['win']:g} s, "
            f"hop {settings['hop']:g} s; PES, EPS: lower is better"
        ),
        title_justify="left",
    )
    table.add_column("source")
    for metric in METRICS:
        table.add_column(_HEADINGS.get(metric, metric), justify="right")
    for name, row in result["sources"].items():
        table.add_row(Text(common.printable(name)), *(_cell(row[m]) for m in METRICS))
    table.add_section()
    table.add_row("mean", *(_cell(result["mean"][m]) for m in METRICS), style="bold")
    common.result_console().print(table)


def _print_csv(result: dict) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["source", *METRICS])
    rows = [*result["sources"].items(), ("mean", result["mean"])]
    for name, row in rows:
        writer.writerow([common.printable(name), *("" if row[m] is None else f"{row[m]:.4f}" for m in METRICS)])
    sys.stdout.flush()


def evaluate(
    references: Annotated[
        list[str],
        typer.Option(
            "--references",
            "-r",
            help="Folder of <stem>.wav (or .flac, ...) reference stems, or reference files (repeat the option; "
            "NAME=FILE names a stem).",
            metavar="DIR|FILE",
            show_default=False,
        ),
    ],
    estimates: Annotated[
        list[str],
        typer.Option(
            "--estimates",
            "-e",
            help="Folder of estimated stems, or estimate files, named like the references.",
            metavar="DIR|FILE",
            show_default=False,
        ),
    ],
    sources: Annotated[
        Optional[str],
        typer.Option(
            "--sources",
            metavar="NAMES",
            help="Comma-separated stems to score (default: every estimate). Leakage from stems left out counts "
            "as artefacts, not interference.",
        ),
    ] = None,
    win: Annotated[float, typer.Option("--win", metavar="SECONDS", help="BSSEval frame length in seconds, 0.1 or more (the paper used 2).")] = 1.0,
    hop: Annotated[float, typer.Option("--hop", metavar="SECONDS", help="BSSEval frame hop in seconds, 0.1 or more (the paper used 1.5).")] = 1.0,
    json_out: common.JsonOut = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print the scores as CSV on stdout.")] = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Score estimated stems against references: SDR, SIR, ISR, SAR (BSSEval v4), MDX SDR, PES and EPS, in dB.

    Prints a table, or one JSON object (--json) or CSV (--csv). Estimates are resampled, trimmed or padded to
    the references with a warning. Metrics that cannot be computed (silent stems) are left out and listed.
    """
    common.configure(quiet=quiet, debug=debug)
    if json_out and csv_out:
        raise InputError("--json and --csv: choose one output format")
    with guidance.flags_named({"win": "--win", "hop": "--hop"}):
        check_frames(win, hop)
    reference_files = collect_stems(references, "--references")
    estimate_files = collect_stems(estimates, "--estimates")
    wanted = [name.strip() for name in (sources or "").split(",") if name.strip()]
    names = pair_stems(reference_files, estimate_files, wanted)
    ignored = [name for name in reference_files if name not in names]
    if ignored:
        common.info(f"not scored (no estimate chosen): {', '.join(ignored)}")
    ref_audio = {name: common.open_audio(reference_files[name]).read() for name in names}
    est_audio = {name: common.open_audio(estimate_files[name]).read() for name in names}
    refs, ests, rate, notes = reconcile(ref_audio, est_audio)
    for note in notes:
        common.warn(note)
    common.info(f"scoring {len(names)} stem(s), {next(iter(refs.values())).shape[1] / rate:.1f} s at {rate} Hz")
    result = evaluate_stems(refs, ests, rate, win=win, hop=hop)
    if result["settings"]["win"] < win:
        common.warn(
            f"--win {win:g} s is longer than the song ({result['settings']['win']:.3g} s): scored as one frame, "
            "the whole song"
        )
    for entry in result["skipped"]:
        common.warn(f"{entry['source']}: {', '.join(entry['metrics'])} left out: {entry['reason']}")
    result["inputs"] = {
        name: {"reference": str(reference_files[name]), "estimate": str(estimate_files[name])} for name in names
    }
    if json_out:
        common.emit_json(result)
    elif csv_out:
        _print_csv(result)
    else:
        _print_table(result)

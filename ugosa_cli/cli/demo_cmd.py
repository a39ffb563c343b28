"""``ugosa demo``: the whole mission on a synthetic song, offline, with the packaged demo model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ugosa_cli import demo as demo_lib
from ugosa_cli.adaptation import StepReport
from ugosa_cli.cli import common
from ugosa_cli.fsutil import ensure_writable


def _db(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def show_scores(result: demo_lib.DemoResult) -> None:
    """The before/after table on stdout."""
    table = Table(
        title=f"Song {result.song.seed - demo_lib.HELD_OUT_SEED_BASE} ({result.song.duration:g} s, "
        f"{result.song.key}, {result.song.tempo:g} bpm): B0 vs {result.method}",
        title_justify="left",
        caption="SDR: whole-song, dB, higher is better. Leakage: power where the instrument rests, dB, lower is better.",
        caption_justify="left",
    )
    untrained = ["SDR B0 + resplit"] if result.resplit else []  # what the filter alone does, for comparison
    for column in ("source", "SDR B0", *untrained, "SDR adapted", "gain", "leakage B0", "leakage adapted", "drop"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for row in result.scores:
        middle = [_db(row.sdr_before_resplit)] if untrained else []
        table.add_row(row.source, _db(row.sdr_before), *middle, _db(row.sdr_after), _db(row.sdr_gain, True),
                      _db(row.leakage_before_db), _db(row.leakage_after_db), _db(row.leakage_drop_db, True))
    table.add_section()
    middle = [_db(result.mean_sdr_before_resplit)] if untrained else []
    table.add_row("mean", _db(result.mean_sdr_before), *middle, _db(result.mean_sdr_after),
                  _db(result.mean_sdr_after - result.mean_sdr_before, True), "", "", "")
    common.result_console().print(table)


def demo(
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o",
            help="Keep song.wav, labels.txt and the true, B0 and adapted stems in this folder; a folder holding any "
            "of them already is refused unless --force.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the files of an earlier demo in --out.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Which held-out song to make (0, 1, 2, ...).")] = 0,
    duration: Annotated[float, typer.Option("--duration", help="Song length in seconds.")] = demo_lib.DEFAULT_DURATION,
    rests: Annotated[
        str,
        typer.Option(
            "--rests",
            help="Where the instruments rest: 'quarters' (each in one quarter of the song, the paper's protocol) or "
            "'sections' (sections drawn at random; a source may rest most of the song).",
            metavar="quarters|sections",
        ),
    ] = demo_lib.HELD_OUT_RESTS,
    strategy: Annotated[
        Optional[str],
        typer.Option("--strategy", "-s", help="P-Lk:D or M-Lk:D (default: P-L2:D, as ugosa separate --labels)."),
    ] = None,
    resplit: Annotated[
        bool,
        typer.Option("--resplit/--no-resplit", help="Apply the labels to the adapted stems, as ugosa separate --labels "
                     "does (--no-resplit: score the adapted model's own stems)."),
    ] = True,
    json_out: common.JsonOut = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Make a song and its labels, separate it before and after adapting, and print SDR and leakage per source.

    Runs offline with the packaged demo model, a small ConvTasNet trained on synthetic songs.
    """
    common.configure(quiet=quiet, debug=debug)
    if out is not None:
        ensure_writable(out)
        demo_lib.check_demo_folder(out, force=force)
    loaded = common.load_model(demo_lib.DEMO_MODEL, offline=True)
    with common.Reporter() as reporter:
        task: int | None = None

        def on_step(report: StepReport) -> None:
            nonlocal task
            if task is None:
                task = reporter.add("adapting", report.total)
            reporter.update(task, report.done, report.total, status=f"loss={report.loss:.4f}")

        result = demo_lib.run_demo(loaded, seed=seed, duration=duration, rests=rests, strategy=strategy,
                                   resplit=resplit, on_stage=common.info, on_step=on_step)
    summary = result.to_dict()
    if out is not None:
        paths = demo_lib.write_demo(result, out)
        summary["files"] = {name: str(path) for name, path in paths.items()}
        common.info(f"wrote the song, labels and stems under {out}")
    if json_out:
        common.emit_json(summary)
    else:
        show_scores(result)

"""``ugosa bench``: the paper's experiment on a MUSDB18 folder, resumable, with the paper-style table."""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ugosa_cli import bench as bench_lib
from ugosa_cli import hub
from ugosa_cli.cli import common, guidance
from ugosa_cli.errors import InputError, UgosaError
from ugosa_cli.metrics import FRAME_RULES, check_frames
from ugosa_cli.planning import CHOSEN
from ugosa_cli.separation import pick_device


def _names(value: Optional[str]) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _columns(document: dict) -> list[str]:
    return ["strategy", "#TP", *document["sources"], "PES", "EPS"]


def _cells(document: dict, row: dict) -> list[str]:
    sdr = [_cell(row["sources"][source]["SDR"]) for source in document["sources"]]
    return [row["strategy"], bench_lib.format_parameters(row["trainable_parameters"]), *sdr,
            _cell(row["PES"]), _cell(row["EPS"])]


def _title(document: dict) -> str:
    settings = document["settings"]
    return (
        f"Median SDR (dB) over {len(document['tracks'])} track(s), BSSEval v4 win {settings['win']:g} s "
        f"hop {settings['hop']:g} s, {settings['frame_rule']} frames; {settings['variant']}; "
        f"PES, EPS: dB, lower is better"
    )


def _print_table(document: dict) -> None:
    table = Table(title=_title(document), title_justify="left")
    for column in _columns(document):
        table.add_column(column, justify="left" if column == "strategy" else "right")
    for row in document["rows"]:
        table.add_row(*_cells(document, row))
    common.result_console().print(table)


def _print_markdown(document: dict) -> None:
    columns = _columns(document)
    common.emit(_title(document))
    common.emit("")
    common.emit("| " + " | ".join(columns) + " |")
    common.emit("| " + " | ".join(["---"] + ["---:"] * (len(columns) - 1)) + " |")
    for row in document["rows"]:
        common.emit("| " + " | ".join(_cells(document, row)) + " |")


def _print_csv(document: dict) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    sources = document["sources"]
    writer.writerow(["strategy", "trainable_parameters", "tracks", *(f"SDR_{s}" for s in sources), "PES", "EPS"])
    for row in document["rows"]:
        values = [row["sources"][s]["SDR"] for s in sources] + [row["PES"], row["EPS"]]
        writer.writerow([row["strategy"], row["trainable_parameters"] or 0, row["tracks"],
                         *("" if v is None else f"{v:.4f}" for v in values)])
    sys.stdout.flush()


def _pending(bench: bench_lib.Bench, resume: bool) -> list[bench_lib.Job]:
    """The jobs still to run; refuses stored results unless resuming, and results made with other settings."""
    jobs = bench.jobs()
    stored = [job for job in jobs if bench.stored(job) is not None]
    if stored and not resume:
        raise InputError(
            f"{bench.out}: holds {len(stored)} result(s) of an earlier run ({stored[0].path}); add --resume to "
            f"continue it, or choose another --out"
        )
    if stored:
        common.info(f"resuming: {len(stored)} of {len(jobs)} result(s) stored already")
    return [job for job in jobs if job not in stored]


def _run(bench: bench_lib.Bench, pending: list[bench_lib.Job], estimate: float | None) -> None:
    """Run the pending jobs with an overall bar (jobs, current track and strategy, ETA) and a bar per job."""
    began = time.monotonic()
    with common.Reporter() as reporter:
        overall = reporter.add("bench", len(pending))
        current = reporter.add("job", None)
        prepared: bench_lib.PreparedTrack | None = None
        for index, job in enumerate(pending):
            elapsed = time.monotonic() - began
            remaining = elapsed / index * (len(pending) - index) if index else estimate
            eta = f" · ETA {_duration(remaining)}" if remaining is not None else ""
            status = f"{job.track.name} · {job.strategy.name}{eta}"
            reporter.update(overall, index, len(pending), status=status)
            if prepared is None or prepared.name != job.track.name:
                reporter.update(current, 0, None, status=f"preparing {job.track.name}")
                prepared = bench.prepare(job.track)

            def progress(step: bench_lib.JobProgress) -> None:
                reporter.update(current, step.done, step.total, status=f"{step.phase} {step.job.strategy.name}")

            try:
                bench.run_job(job, prepared, progress)
            except UgosaError as exc:
                where = f"{job.track.name}, {job.strategy.name}"
                raise type(exc)(exc.message if where in exc.message else f"{where}: {exc.message}") from exc
        reporter.update(overall, len(pending), len(pending), status="done")


def bench(
    musdb: Annotated[
        Path,
        typer.Option(
            "--musdb",
            metavar="DIR",
            help="MUSDB18-HQ root (or its test folder): test/<track>/{mixture,drums,bass,other,vocals}.wav.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", metavar="DIR", help="Folder for the results, the variant audio and labels.")
    ],
    tracks: Annotated[
        Optional[int],
        typer.Option("--tracks", metavar="N", help="Number of test tracks, in name order (default: all; paper: 10)."),
    ] = None,
    start: Annotated[int, typer.Option("--start", metavar="N", help="Index of the first track (0-based).")] = 0,
    names: Annotated[
        Optional[str],
        typer.Option("--names", metavar="NAMES", help="Comma-separated track names instead of --tracks/--start."),
    ] = None,
    strategies: Annotated[
        Optional[str],
        typer.Option("--strategies", metavar="NAMES", help="Comma-separated strategies (default: every P-Lk:D, then B0)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Keep stored results made with the same settings; run the rest.")
    ] = False,
    as_is: Annotated[bool, typer.Option("--as-is", help="Use the tracks unchanged instead of the UGOSA variant.")] = False,
    variant_seed: Annotated[
        int, typer.Option("--variant-seed", metavar="N", help="Seed of the order in which sources are silenced.")
    ] = 0,
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    config: common.ConfigSpec = None,
    model_type: common.ModelType = None,
    device: guidance.DeviceOpt = "auto",
    epochs: guidance.Epochs = None,
    steps: guidance.Steps = None,
    lr: guidance.Lr = None,
    step: guidance.StepOpt = None,
    holdout: guidance.Holdout = None,
    window: guidance.Window = None,
    hop: guidance.Hop = None,
    gamma: guidance.Gamma = None,
    guard: guidance.Guard = None,
    anchor: guidance.Anchor = None,
    batch_size: guidance.BatchSize = None,
    optimizer: guidance.OptimizerOpt = None,
    seed: guidance.Seed = 0,
    protocol: guidance.Protocol = "auto",
    amp: guidance.Amp = False,
    shifts: Annotated[int, typer.Option("--shifts", metavar="N", help="Random time shifts averaged when separating, 0 to 100 (paper: 10).")] = 0,
    eval_win: Annotated[
        float, typer.Option("--eval-win", metavar="SECONDS", help="BSSEval frame length in seconds, 0.1 or more (paper: 2).")
    ] = 2.0,
    eval_hop: Annotated[
        float, typer.Option("--eval-hop", metavar="SECONDS", help="BSSEval frame hop in seconds, 0.1 or more (paper: 1.5).")
    ] = 1.5,
    frame_rule: Annotated[
        str,
        typer.Option(
            "--frame-rule",
            metavar="museval|per-source",
            help="museval: a frame where any reference is silent is skipped for every source (the paper's tooling); "
            "per-source: skipped only for the sources silent in it.",
        ),
    ] = "museval",
    resplit: Annotated[
        bool,
        typer.Option(
            "--resplit",
            help="Also score each strategy's stems re-split by the labels, as separate --labels --resplit writes them "
            "(rows STRATEGY+resplit).",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and its time estimate; run nothing.")] = False,
    json_out: common.JsonOut = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print the table as CSV on stdout.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the table as Markdown on stdout.")] = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Run the paper's experiment on MUSDB18: adapt with each strategy, separate, score, print the table.

    Each track is made into the UGOSA variant (every source silenced in one quarter; --as-is keeps it), the
    oracle activations are derived from its stems, and every strategy adapts with the settings every command
    uses (explicit flags, else the model's recommendation, else the paper's; --protocol paper: the paper's). Results are stored under --out per track and strategy as they finish; --resume continues.
    """
    common.configure(quiet=quiet, debug=debug)
    if sum((json_out, csv_out, markdown)) > 1:
        raise InputError("--json, --csv and --markdown: choose one output format")
    if frame_rule not in FRAME_RULES:
        raise InputError(f"--frame-rule {frame_rule}: use one of {', '.join(FRAME_RULES)}")
    with guidance.flags_named({"win": "--eval-win", "hop": "--eval-hop"}):  # before the adaptation's own --hop
        check_frames(eval_win, eval_hop)
    with guidance.flags_named():
        request = guidance.adaptation_request(
            strategy=None, epochs=epochs, steps=steps, lr=lr, step=step, holdout=holdout, window=window, hop=hop, gamma=gamma, guard=guard, anchor=anchor, batch_size=batch_size,
            optimizer=optimizer, seed=seed, protocol=protocol, amp=amp,
        )
        settings = bench_lib.BenchSettings(
            request=request, shifts=shifts, win=eval_win, hop=eval_hop, frame_rule=frame_rule,
            variant="as-is" if as_is else "ugosa", variant_seed=variant_seed, resplit=resplit,
        )
        chosen = bench_lib.select_tracks(bench_lib.find_tracks(musdb), count=tracks, start=start, names=_names(names))
        torch_device = pick_device(device)
        loaded = common.load_model(model, offline=offline, config=config, model_type=model_type)
        plan = bench_lib.strategies_for(loaded.model, _names(strategies))
        bench = bench_lib.Bench(loaded, chosen, plan, settings, out, torch_device)
    pending = _pending(bench, resume)
    common.info(
        f"bench: {len(chosen)} track(s) x {len(plan)} strategies ({', '.join(s.name for s in plan)}) with "
        f"{loaded.name} on {torch_device}; {len(pending)} to run"
    )
    trained = [s for s in plan if s.trains]
    if trained:
        training, cpu_budget = settings.training(trained[0], loaded, torch_device)
        shown = ", ".join(f"{k}={v}" for k, v in training.to_dict().items() if k in CHOSEN and k != "strategy")
        common.info(f"training settings: {shown}" + ("; fitted to the CPU budget per track" if cpu_budget else ""))
    estimate = None
    if pending and (torch_device.type == "cpu" or dry_run):
        common.info(f"timing a few steps on {pending[0].track.name} ...")
        estimate = bench.estimate_seconds(bench.prepare(pending[0].track), pending)
        common.info(
            f"estimated time on {torch_device}: about {_duration(estimate)} for adaptation and separation, "
            f"plus scoring"
            + ("; a GPU is much faster" if torch_device.type == "cpu" else "")
        )
    if dry_run:
        if json_out:
            common.emit_json({"tracks": [t.name for t in chosen], "strategies": [s.name for s in plan],
                              "pending": len(pending), "estimated_seconds": estimate})
        return
    _run(bench, pending, estimate)
    stored = [bench.stored(job) for job in bench.jobs()]
    document = bench_lib.summary(bench, [result for result in stored if result is not None])
    bench_lib.write_json(Path(out) / "summary.json", document, bench.root)
    if json_out:
        common.emit_json(document)
    elif csv_out:
        _print_csv(document)
    elif markdown:
        _print_markdown(document)
    else:
        _print_table(document)

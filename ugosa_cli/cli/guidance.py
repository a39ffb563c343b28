"""What the guided commands (``adapt``, ``separate --labels``) share: their options, turning them into a
request, reading a song's labels, and showing the plan, the training and the silence report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Optional

import typer
from rich.table import Table

from ugosa_cli.adaptation import DEFAULT_ANCHOR, DEFAULT_GUARD, OPTIMIZERS, AdaptationResult, StepReport
from ugosa_cli.audio import Audio, collect_stems
from ugosa_cli.cli import common
from ugosa_cli.errors import SettingError
from ugosa_cli.labels import LABEL_FORMATS, Labels, read_labels, require_playing
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.planning import AdaptationPlan, AdaptationRequest
from ugosa_cli.separation import DEVICES
from ugosa_cli.strategy import DEFAULT_STRATEGY, Strategy

# The flag that sets each setting of the core, so its errors can name what the user typed.
FLAGS = {
    "strategy": "--strategy",
    "epochs": "--epochs",
    "lr": "--lr",
    "window": "--window",
    "hop": "--hop",
    "gamma": "--gamma",
    "guard": "--guard",
    "anchor": "--anchor",
    "batch_size": "--batch-size",
    "optimizer": "--optimizer",
    "seed": "--seed",
    "amp": "--amp",
    "protocol": "--protocol",
    "references": "--references",
    "segment": "--segment",
    "overlap": "--overlap",
    "shifts": "--shifts",
}


@contextlib.contextmanager
def flags_named(flags: dict[str, str] = FLAGS) -> Iterator[None]:
    """Errors of the core's settings re-raised naming the flag that set them (``--batch-size 0: ...``)."""
    try:
        yield
    except SettingError as exc:
        if exc.setting in flags:
            raise exc.for_flag(flags[exc.setting]) from None
        raise


@dataclass(frozen=True)
class LabelOptions:
    """How to read a labels file (the options ``labels`` commands share)."""

    fmt: Optional[str] = None
    mapping: list[str] = field(default_factory=list)
    ignore_unknown: bool = False
    margin: float = 0.0


# Option types shared by `adapt`, `separate` and `labels` (one definition each).
LabelsOpt = Annotated[
    Optional[str], typer.Option("--labels", "-l", metavar="FILE", help="Where each instrument plays: Audacity labels, CSV, TSV or JSON.")
]
LabelsFormat = Annotated[
    Optional[str], typer.Option("--labels-format", metavar="FORMAT", help=f"Force the labels format: {', '.join(LABEL_FORMATS)}.")
]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", metavar="WORD=SOURCE", help="Map your label words to sources, e.g. guitar=other.")]
IgnoreUnknown = Annotated[bool, typer.Option("--ignore-unknown", help="Skip labels naming no known source.")]
Margin = Annotated[float, typer.Option("--margin", metavar="SEC", help="Widen labelled active regions by this many seconds.")]
StrategyOpt = Annotated[
    Optional[str],
    typer.Option(
        "--strategy", "-s", metavar="STRATEGY",
        help=f"B0, or P-Lk:D / M-Lk:D / S-Lk:D with k in 1..5 (see `ugosa strategies`; default: the model's "
        f"recommendation, else {DEFAULT_STRATEGY}).",
    ),
]
Epochs = Annotated[
    Optional[int], typer.Option("--epochs", metavar="N", help="Passes over the song's windows, 1 to 1000 (default: the model's recommendation, else the paper's 10).")
]
Lr = Annotated[
    Optional[float],
    typer.Option("--lr", metavar="RATE", help="Learning rate (default: the model's recommendation, else 1e-5)."),
]
Window = Annotated[
    Optional[float],
    typer.Option(
        "--window", metavar="SEC", help="Training window in seconds, 0.1 to 60 (default: the model's recommendation, else 10)."
    ),
]
Hop = Annotated[
    Optional[float], typer.Option("--hop", metavar="SEC", help="Hop between training windows in seconds, at least the window / 100 (default: the model's recommendation, else the paper's 1).")
]
Gamma = Annotated[
    Optional[float],
    typer.Option(
        "--gamma", metavar="WEIGHT",
        help="Weight of the silence term of the proposed loss (default: the model's recommendation, else 1).",
    ),
]
Guard = Annotated[
    Optional[float],
    typer.Option(
        "--guard", metavar="SEC",
        help=f"Seconds on each side of every labelled border where the silence term is not applied, so borders "
        f"drawn a little off do no harm (default: the model's recommendation, else {DEFAULT_GUARD:g}; 0: exact borders).",
    ),
]
Anchor = Annotated[
    Optional[float],
    typer.Option(
        "--anchor", metavar="WEIGHT",
        help="Weight of the term that keeps each source with no labelled silence (an unlabelled one) close to "
        f"the pretrained model's stem, so it does not soak up what the others lose (default: the model's "
        f"recommendation, else {DEFAULT_ANCHOR:g}; 0: off).",
    ),
]
BatchSize = Annotated[
    Optional[int], typer.Option("--batch-size", metavar="N", help="Windows per step, 1 to 64 (default: the model's recommendation, else 1; 4 on CUDA).")
]
OptimizerOpt = Annotated[
    Optional[str],
    typer.Option(
        "--optimizer", metavar="NAME", help=f"One of {', '.join(OPTIMIZERS)} (default: the model's, else ranger)."
    ),
]
Seed = Annotated[Optional[int], typer.Option("--seed", metavar="N", help="Seed for repeatable runs (window order, init).")]
Protocol = Annotated[
    str,
    typer.Option(
        "--protocol",
        metavar="auto|paper",
        help="auto: the settings the model file recommends (the demo model has its own), else the paper's on a "
        "GPU and a plan of about 2x the separation time on a CPU; paper: always the paper's (10 epochs, 10 s "
        "windows, 1 s hop).",
    ),
]
Amp = Annotated[bool, typer.Option("--amp", help="Mixed precision (bfloat16) on CUDA.")]
References = Annotated[
    Optional[list[str]], typer.Option("--references", metavar="DIR|FILE", help="True stems for S- strategies: a folder or files.")
]
DeviceOpt = Annotated[str, typer.Option("--device", "-d", metavar="DEVICE", help=f"One of {', '.join(DEVICES)}.")]


def adaptation_request(
    *,
    strategy: Optional[str],
    epochs: Optional[int],
    lr: Optional[float],
    window: Optional[float],
    hop: Optional[float],
    gamma: Optional[float],
    batch_size: Optional[int],
    optimizer: Optional[str],
    seed: Optional[int],
    protocol: str,
    amp: bool,
    guard: Optional[float] = None,
    anchor: Optional[float] = None,
) -> AdaptationRequest:
    """The user's explicit settings (the strategy parsed here, once)."""
    return AdaptationRequest(
        strategy=Strategy.parse(strategy) if strategy is not None else None,
        epochs=epochs, lr=lr, window=window, hop=hop, gamma=gamma, guard=guard, anchor=anchor, batch_size=batch_size,
        optimizer=optimizer, seed=seed, amp=amp, protocol=protocol,
    )


def read_song_labels(spec: str, options: LabelOptions, sources: tuple[str, ...], duration: float) -> Labels:
    """A song's labels (``duration`` seconds long), with their warnings shown."""
    labels = read_labels(
        spec,
        sources=sources,
        fmt=options.fmt,
        mapping=common.parse_pairs(options.mapping, "--map"),
        ignore_unknown=options.ignore_unknown,
        margin=options.margin,
        duration=duration,
    )
    for line in labels.warnings:
        common.warn(line)
    return labels


def song_labels(spec: str, options: LabelOptions, sources: tuple[str, ...], audio: Audio) -> Labels:
    """A song's labels for adapting to it, with their warnings shown."""
    labels = read_song_labels(spec, options, sources, audio.duration)
    require_playing(labels, spec)
    return labels


def read_references(paths: list[str]) -> dict[str, Audio] | None:
    """The true stems given with ``--references`` (a folder or files), by source name."""
    if not paths:
        return None
    return {name: common.open_audio(path).read() for name, path in collect_stems(paths, "--references").items()}


def show_plan(plan: AdaptationPlan) -> None:
    if plan.strategy.trains:
        common.info(
            f"adapting with {plan.strategy} ({plan.trains}, {plan.trainable_parameters:,} trainable parameters) "
            f"on {plan.device}: {plan.windows} windows, {plan.steps} steps, about {plan.estimated_seconds} s and "
            f"{plan.estimated_memory_bytes / 2**30:.1f} GiB"
        )
    shown = plan.strategy.trains or plan.resplits
    common.info(f"plan: {plan.plan}" if shown else f"not adapting (strategy {plan.strategy})")
    for note in plan.notes:
        common.info(f"note: {note}")
    for warning in plan.warnings:
        common.warn(warning)


def run_adaptation(pipeline: GuidedSeparator, plan: AdaptationPlan) -> AdaptationResult:
    """Train with progress bars (epochs and steps, with the loss terms and ETA) on stderr, then show the
    silence report."""
    if not plan.strategy.trains:
        return pipeline.adapt(plan)
    with common.Reporter() as reporter:
        epochs = reporter.add("epochs", plan.settings.epochs)
        steps = reporter.add("steps", plan.adapter.steps_per_epoch)

        def progress(report: StepReport) -> None:
            terms = " ".join(f"{k}={v:.4f}" for k, v in report.terms.items())
            reporter.update(steps, report.step, report.steps, status=terms)
            reporter.update(epochs, report.epoch - 1 + report.step / report.steps, report.epochs)

        result = pipeline.adapt(plan, progress)
    show_result(result)
    return result


def show_result(result: AdaptationResult) -> None:
    if not result.silence or common.STATE.quiet:
        return
    table = Table(title="Energy in the regions labelled silent (no reference needed)", title_justify="left")
    for column in ("source", "silent s", "before dB", "after dB", "change dB"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for row in result.silence:
        table.add_row(row.source, f"{row.seconds:.1f}", f"{row.before_db:.1f}", f"{row.after_db:.1f}",
                      f"{row.change_db:+.1f}")
    common.stderr().print(table)


def result_json(result: AdaptationResult, plan: AdaptationPlan) -> dict[str, object]:
    return {
        "plan": plan.to_dict(),
        "seconds": round(result.seconds, 2),
        "history": result.history,
        "silence": [
            {"source": r.source, "seconds": r.seconds, "before_db": r.before_db, "after_db": r.after_db,
             "change_db": r.change_db}
            for r in result.silence
        ],
    }

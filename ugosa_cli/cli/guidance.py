"""What the guided commands (``adapt``, ``separate --labels``) share: their options, turning them into a
request, reading a song's labels, and showing the plan, the training and the silence report."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Optional

import typer
from rich.table import Table

from ugosa_cli.adaptation import (
    DEFAULT_ANCHOR,
    DEFAULT_GUARD,
    DEFAULT_HOLDOUT,
    DEFAULT_STEP,
    OPTIMIZERS,
    AdaptationResult,
    AdaptationSettings,
    StepReport,
)
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
    "steps": "--steps",
    "lr": "--lr",
    "step": "--step",
    "holdout": "--holdout",
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
_DEFAULTS = AdaptationSettings()
Epochs = Annotated[
    Optional[int],
    typer.Option("--epochs", metavar="N", help="Passes over the song's windows, 1 to 1000 (default: the plan's; --steps "
                 "counts steps instead)."),
]
Steps = Annotated[
    Optional[int],
    typer.Option("--steps", metavar="N", help="Optimisation steps in all, 1 to 100000 (default: as many as the plan's "
                 "budget allows)."),
]
Lr = Annotated[
    Optional[float],
    typer.Option("--lr", metavar="RATE", help="One learning rate for every weight (default: the model's recommendation, "
                 "else the step-size rule of --step; the paper used 1e-5)."),
]
StepOpt = Annotated[
    Optional[float],
    typer.Option("--step", metavar="SHARE", help="Step size as a share of each weight tensor's own scale (its RMS), "
                 f"the same on any network (default {DEFAULT_STEP:g}; --lr sets an absolute rate instead)."),
]
Holdout = Annotated[
    Optional[float],
    typer.Option("--holdout", metavar="SHARE", help="Share of each labelled rest (2 s or longer) kept out of training "
                 "to check whether adapting helped and to stop once it stops helping, 0 to 0.5 (default "
                 f"{DEFAULT_HOLDOUT:g}; 0: no check, every planned step)."),
]
Window = Annotated[
    Optional[float],
    typer.Option(
        "--window", metavar="SEC",
        help=f"Training window in seconds, 0.1 to 60 (default: the model's recommendation, else {_DEFAULTS.window:g}, "
        "or the model's segment if shorter).",
    ),
]
Hop = Annotated[
    Optional[float], typer.Option("--hop", metavar="SEC", help="Hop between training windows in seconds, at least the window / 100 (default: the window).")
]
Gamma = Annotated[
    Optional[float],
    typer.Option(
        "--gamma", metavar="WEIGHT",
        help=f"Weight of the silence term of the proposed loss (default: the model's recommendation, else "
        f"{_DEFAULTS.gamma:g}; the paper used 1).",
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
        "--optimizer", metavar="NAME",
        help=f"One of {', '.join(OPTIMIZERS)} (default: the model's, else {_DEFAULTS.optimizer}; the paper used ranger)."
    ),
]
Seed = Annotated[Optional[int], typer.Option("--seed", metavar="N", help="Seed for repeatable runs (window order, init).")]
Protocol = Annotated[
    str,
    typer.Option(
        "--protocol",
        metavar="auto|paper",
        help="auto: the settings the model file recommends, else ugosa's, with steps and windows planned on a CPU "
        "to do about the work of one more separation of the song; paper: the paper's (Ranger at lr 1e-5, 10 "
        "epochs of 10 s windows with a 1 s hop, no held-out check).",
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
    steps: Optional[int] = None,
    step: Optional[float] = None,
    holdout: Optional[float] = None,
) -> AdaptationRequest:
    """The user's explicit settings (the strategy parsed here, once)."""
    return AdaptationRequest(
        strategy=Strategy.parse(strategy) if strategy is not None else None,
        epochs=epochs, steps=steps, lr=lr, step=step, window=window, hop=hop, gamma=gamma, guard=guard, anchor=anchor,
        holdout=holdout, batch_size=batch_size, optimizer=optimizer, seed=seed, amp=amp, protocol=protocol,
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


def run_adaptation(pipeline: GuidedSeparator, plan: AdaptationPlan, *, follow_check: bool = True) -> AdaptationResult:
    """Train with a progress bar (steps, with the loss terms and ETA) on stderr, then show the held-out check and
    what it decided (``follow_check``: as :meth:`GuidedSeparator.adapt`)."""
    if not plan.strategy.trains:
        return pipeline.adapt(plan, follow_check=follow_check)
    with common.Reporter() as reporter:
        steps = reporter.add("adapting", plan.steps)

        def progress(report: StepReport) -> None:
            terms = " ".join(f"{k}={v:.4f}" for k, v in report.terms.items())
            reporter.update(steps, report.done, report.total, status=terms)

        result = pipeline.adapt(plan, progress, follow_check=follow_check)
        if result.stopped is not None:
            reporter.update(steps, result.steps, result.steps, status="stopped early")
    show_result(result, follow_check=follow_check)
    return result


def show_result(result: AdaptationResult, *, follow_check: bool = True) -> None:
    """The held-out check as a table on stderr, and the decision in one line."""
    evidence, decision = result.evidence, result.decision
    if common.STATE.quiet or decision is None:
        return
    if result.stopped is not None:
        common.info(f"note: {result.stopped}")
    if evidence is not None and evidence.checks:
        table = Table(title="Held out of training: each source's level where labelled silent, relative to where it "
                      "plays, and what the playing stems leave unexplained of the mix (dB; lower is better)",
                      title_justify="left")
        for column in ("source", "held-out s", "pretrained", "adapted", "change"):
            table.add_column(column, justify="left" if column == "source" else "right")
        for row in evidence.checks:
            table.add_row(row.source, f"{row.seconds:.1f}", *_levels(row.before_db, row.after_db))
        table.add_row("(unexplained mix)", f"{evidence.seconds:.1f}",
                      *_levels(evidence.residual_before_db, evidence.residual_after_db))
        common.stderr().print(table)
    if decision.adapted:
        common.info(f"writing the adapted stems: {decision.reason}" if decision.checked else f"note: {decision.reason}")
    elif follow_check:
        common.warn(f"writing the pretrained stems with the labels applied: {decision.reason}")
    else:
        common.warn(f"the held-out check says adapting did not help ({decision.reason}); the adapted model is "
                    "saved as asked: `ugosa separate --labels` would write the pretrained stems with the labels "
                    "applied instead")


def _levels(before: float | None, after: float | None) -> tuple[str, str, str]:
    """A check's cells: pretrained, adapted and the change, ``-`` where unknown."""
    shown = ("-" if before is None else f"{before:.1f}", "-" if after is None else f"{after:.1f}")
    return (*shown, "-" if before is None or after is None else f"{after - before:+.1f}")


def result_json(result: AdaptationResult, plan: AdaptationPlan) -> dict[str, object]:
    return {
        "plan": plan.to_dict(),
        "seconds": round(result.seconds, 2),
        "steps": result.steps,
        "stopped": result.stopped,
        "history": result.history,
        "check": None if result.evidence is None else result.evidence.to_dict(),
        "decision": None if result.decision is None else result.decision.to_dict(),
    }

"""``ugosa adapt`` and ``ugosa strategies``, and the guided adaptation ``separate --labels`` shares."""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Mapping, Optional

import numpy as np
import typer
from rich.table import Table

from ugosa_cli import __version__, hub
from ugosa_cli.adaptation import (
    DEFAULT_STRATEGY,
    OPTIMIZERS,
    Adapter,
    AdaptationResult,
    AdaptationSettings,
    StepReport,
    Strategy,
    adaptation_defaults,
    count_trainable,
    describe_trainable,
    fit_to_budget,
    parse_strategy,
    strategy_table,
)
from ugosa_cli.audio import STDIN, Audio, collect_stems, fit_length, match_channels, resample
from ugosa_cli.checkpoint import LoadedModel, save_checkpoint
from ugosa_cli.cli import common
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import ensure_writable, sha256_file
from ugosa_cli.labels import LABEL_FORMATS, Labels, activation_matrix, read_labels
from ugosa_cli.models.convtasnet import ConvTasNet
from ugosa_cli.separation import DEVICES, pick_device

PROTOCOLS = ("auto", "paper")


@dataclass
class GuidanceOptions:
    """The labels and training settings given on the command line (None = the plan decides)."""

    labels: str
    labels_format: Optional[str]
    mapping: list[str]
    ignore_unknown: bool
    margin: float
    strategy: Optional[str]
    epochs: Optional[int]
    lr: Optional[float]
    window: Optional[float]
    hop: Optional[float]
    gamma: Optional[float]
    batch_size: Optional[int]
    optimizer: Optional[str]
    seed: Optional[int]
    protocol: str
    amp: bool
    references: list[str]


# Option types shared by `adapt` and `separate` (one definition each).
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
Epochs = Annotated[Optional[int], typer.Option("--epochs", metavar="N", help="Passes over the song's windows (paper: 10).")]
Lr = Annotated[
    Optional[float],
    typer.Option("--lr", metavar="RATE", help="Learning rate (default: the model's recommendation, else 1e-5)."),
]
Window = Annotated[
    Optional[float],
    typer.Option(
        "--window", metavar="SEC", help="Training window in seconds (default: the model's recommendation, else 10)."
    ),
]
Hop = Annotated[Optional[float], typer.Option("--hop", metavar="SEC", help="Hop between training windows in seconds (paper: 1).")]
Gamma = Annotated[
    Optional[float],
    typer.Option(
        "--gamma", metavar="WEIGHT",
        help="Weight of the silence term of the proposed loss (default: the model's recommendation, else 1).",
    ),
]
BatchSize = Annotated[
    Optional[int], typer.Option("--batch-size", metavar="N", help="Windows per step (default 1; 4 on CUDA).")
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


def song_digest(track: str, audio: Audio) -> str:
    """SHA-256 of the song file, or of its decoded samples when read from stdin."""
    if track == STDIN:
        return hashlib.sha256(audio.samples.tobytes()).hexdigest()
    return sha256_file(Path(track))


def load_guidance(options: GuidanceOptions, model_sources: tuple[str, ...], audio: Audio) -> Labels:
    labels = read_labels(
        options.labels,
        sources=model_sources,
        fmt=options.labels_format,
        mapping=common.parse_pairs(options.mapping, "--map"),
        ignore_unknown=options.ignore_unknown,
        margin=options.margin,
        duration=audio.duration,
    )
    for line in labels.warnings:
        common.warn(line)
    labelled = [source for source in labels.sources if source not in labels.unconstrained]
    if labelled and not any(labels.regions[source] for source in labelled):
        raise InputError(
            f"{options.labels}: no labelled source ({', '.join(labelled)}) plays anywhere in the song "
            f"({audio.duration:.1f} s), so adapting would only train them to silence; check the labels belong to "
            "this song (to silence a source on purpose, also label where another one plays)"
        )
    return labels


def effective_strategy(strategy: str | None, model_defaults: Mapping[str, Any]) -> Strategy:
    """The strategy a run uses: the user's, else the model's recommendation, else the paper's default."""
    return parse_strategy(strategy or model_defaults.get("strategy") or DEFAULT_STRATEGY)


def recommended(loaded: LoadedModel, protocol: str) -> dict[str, Any]:
    """The model file's recommended adaptation settings, unless ``--protocol`` asks for another plan."""
    return adaptation_defaults(loaded.provenance) if protocol == "auto" else {}


def _settings(options: GuidanceOptions, cuda: bool, model_defaults: Mapping[str, Any]) -> AdaptationSettings:
    """The user's settings; where the user chose nothing, the model's recommendation, then the paper's."""
    defaults = AdaptationSettings(**model_defaults)

    def chosen(value: Any, default: Any) -> Any:
        return default if value is None else value

    return AdaptationSettings(
        strategy=effective_strategy(options.strategy, model_defaults).name,
        epochs=chosen(options.epochs, defaults.epochs),
        lr=chosen(options.lr, defaults.lr),
        window=chosen(options.window, defaults.window),
        hop=chosen(options.hop, defaults.hop),
        gamma=chosen(options.gamma, defaults.gamma),
        batch_size=chosen(options.batch_size, model_defaults.get("batch_size", 4 if cuda else 1)),
        optimizer=chosen(options.optimizer, defaults.optimizer),
        seed=options.seed,
        amp=options.amp,
    )


def prepare_adapter(
    loaded: LoadedModel, audio: Audio, labels: Labels, options: GuidanceOptions, device_name: str, *, downmix: bool
) -> tuple[Adapter, dict[str, object]]:
    """Build the adapter and its plan: measure a few steps, fit a CPU plan to the budget if asked."""
    if options.protocol not in PROTOCOLS:
        raise InputError(f"--protocol {options.protocol}: use one of {', '.join(PROTOCOLS)}")
    device = pick_device(device_name)
    model = loaded.model
    mix = resample(match_channels(audio.samples, model.audio_channels, downmix=downmix, label=audio.source),
                   audio.samplerate, model.samplerate)
    activations = activation_matrix(labels, model.samplerate, mix.shape[1])
    references = _references(options.references, model, mix.shape[1]) if options.references else None
    model_defaults = recommended(loaded, options.protocol)
    settings = _settings(options, device.type == "cuda", model_defaults)
    adapter = Adapter(model, mix, activations, settings, references=references, device=device)
    step_s, prefix_s, forward_s = adapter.measure()
    plan_note = f"the settings {loaded.name} recommends" if model_defaults else "the paper's protocol"
    user_fixed = options.epochs is not None or options.hop is not None or bool(model_defaults)
    if device.type == "cpu" and options.protocol == "auto" and not user_fixed and adapter.strategy.trains:
        settings, plan_note = fit_to_budget(
            settings,
            frames=mix.shape[1],
            samplerate=model.samplerate,
            step_seconds=step_s,
            prefix_seconds=prefix_s,
            forward_seconds=forward_s,
        )
        adapter = Adapter(model, mix, activations, settings, references=references, device=device)
    plan = {
        "strategy": adapter.strategy.name,
        "trains": describe_trainable(model, adapter.strategy),
        "trainable_parameters": count_trainable(model, adapter.strategy),
        "device": str(device),
        "windows": len(adapter.starts),
        "steps": adapter.steps_per_epoch * settings.epochs,
        "estimated_seconds": round(adapter.estimate_seconds(step_s, prefix_s), 1),
        "plan": plan_note,
        "settings": settings.to_dict(),
        "notes": adapter.notes,
        "warnings": adapter.warnings,
    }
    return adapter, plan


def _references(paths: list[str], model: ConvTasNet, frames: int) -> np.ndarray:
    """The true stems (sources, channels, frames) at the model's rate, for S- strategies."""
    files = collect_stems(paths, "--references")
    missing = [name for name in model.sources if name not in files]
    if missing:
        raise InputError(f"--references: no stem for {', '.join(missing)}; give one file per source ({', '.join(model.sources)})")
    out = []
    for name in model.sources:
        audio = common.open_audio(files[name]).read()
        samples = resample(match_channels(audio.samples, model.audio_channels, label=audio.source),
                           audio.samplerate, model.samplerate)
        out.append(fit_length(samples, frames))
    return np.stack(out)


def show_plan(plan: dict[str, object]) -> None:
    common.info(
        f"adapting with {plan['strategy']} ({plan['trains']}, {plan['trainable_parameters']:,} trainable parameters) "
        f"on {plan['device']}: {plan['windows']} windows, {plan['steps']} steps, "
        f"about {plan['estimated_seconds']} s"
    )
    common.info(f"plan: {plan['plan']}")
    for note in plan["notes"]:  # type: ignore[union-attr]
        common.info(f"note: {note}")
    for warning in plan["warnings"]:  # type: ignore[union-attr]
        common.warn(warning)


def run_adapter(adapter: Adapter) -> AdaptationResult:
    """Train with progress bars (epochs and steps, with the loss terms and ETA) on stderr."""
    with common.Reporter() as reporter:
        epochs = reporter.add("epochs", adapter.settings.epochs)
        steps = reporter.add("steps", adapter.steps_per_epoch)

        def progress(report: StepReport) -> None:
            terms = " ".join(f"{k}={v:.4f}" for k, v in report.terms.items())
            reporter.update(steps, report.step, report.steps, status=terms)
            reporter.update(epochs, report.epoch - 1 + report.step / report.steps, report.epochs)

        return adapter.run(progress)


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


def result_json(result: AdaptationResult, plan: dict[str, object]) -> dict[str, object]:
    return {
        "plan": plan,
        "seconds": round(result.seconds, 2),
        "history": result.history,
        "silence": [
            {"source": r.source, "seconds": r.seconds, "before_db": r.before_db, "after_db": r.after_db,
             "change_db": r.change_db}
            for r in result.silence
        ],
    }


def guided_adaptation(
    loaded: LoadedModel, track: str, audio: Audio, options: GuidanceOptions, device: str, *, downmix: bool,
    dry_run: bool = False,
) -> tuple[AdaptationResult | None, dict[str, object], Labels]:
    """Read the labels, plan, show the plan, and (unless ``dry_run``) adapt ``loaded.model`` in place."""
    labels = load_guidance(options, loaded.model.sources, audio)
    adapter, plan = prepare_adapter(loaded, audio, labels, options, device, downmix=downmix)
    show_plan(plan)
    if dry_run:
        return None, plan, labels
    result = run_adapter(adapter)
    show_result(result)
    return result, plan, labels


def adapt(
    track: Annotated[str, typer.Argument(help="The song to adapt to; '-' reads it from stdin.", show_default=False, metavar="TRACK")],
    labels: LabelsOpt = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", "-o", metavar="FILE", help="Where to write the adapted model (default: TRACK-adapted.th).")
    ] = None,
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    strategy: StrategyOpt = None,
    epochs: Epochs = None,
    lr: Lr = None,
    window: Window = None,
    hop: Hop = None,
    gamma: Gamma = None,
    batch_size: BatchSize = None,
    optimizer: OptimizerOpt = None,
    seed: Seed = 0,
    protocol: Protocol = "auto",
    amp: Amp = False,
    references: References = None,
    labels_format: LabelsFormat = None,
    mapping: MapOpt = None,
    ignore_unknown: IgnoreUnknown = False,
    margin: Margin = 0.0,
    device: DeviceOpt = "auto",
    downmix: Annotated[bool, typer.Option("--downmix", help="Mix more than 2 channels down to stereo.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and a time estimate; do not train.")] = False,
    json_out: common.JsonOut = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Adapt the model to one song from its labels and save the adapted model (path on stdout)."""
    common.configure(quiet=quiet, debug=debug)
    if labels is None:
        raise InputError("adapt needs --labels FILE: where each instrument plays (see `ugosa labels --help`)")
    name = "stdin" if track == STDIN else Path(track).stem
    target = out or Path(f"{name}-adapted.th")
    if track != STDIN and target.resolve() == Path(track).resolve():
        raise InputError(f"{target}: refusing to overwrite the input song; choose another --out")
    ensure_writable(target.resolve().parent)
    options = GuidanceOptions(labels, labels_format, mapping or [], ignore_unknown, margin, strategy, epochs, lr,
                              window, hop, gamma, batch_size, optimizer, seed, protocol, amp, references or [])
    loaded = common.load_model(model, offline=offline)
    audio = common.open_audio(track).read()
    result, plan, _ = guided_adaptation(loaded, track, audio, options, device, downmix=downmix, dry_run=dry_run)
    if result is None:
        if json_out:
            common.emit_json({"plan": plan})
        else:
            common.emit(f"{plan['strategy']}\t{plan['windows']} windows\t{plan['steps']} steps\t~{plan['estimated_seconds']} s")
        return
    labels_digest = "stdin" if labels == STDIN else sha256_file(Path(labels))
    provenance = {
        "base_model": loaded.name,
        "base_sha256": loaded.sha256,
        "song": track,
        "song_sha256": song_digest(track, audio),
        "labels_sha256": labels_digest,
        "strategy": result.strategy.name,
        "settings": result.settings.to_dict(),
        "loss_history": result.history,
        "silence_db": {r.source: [r.before_db, r.after_db] for r in result.silence},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ugosa_version": __version__,
    }
    save_checkpoint(target, result.model, provenance)
    if json_out:
        common.emit_json({"model": str(target), **result_json(result, plan)})
    else:
        common.emit(str(target))


def strategies(
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    json_out: common.JsonOut = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """List the fine-tuning strategies: what each trains and its number of trainable parameters (#TP)."""
    common.configure(quiet=quiet, debug=debug)
    loaded = common.load_model(model, offline=offline)
    rows = strategy_table(loaded.model)
    if json_out:
        common.emit_json({"model": loaded.name, "strategies": rows})
        return
    table = Table(title=f"Strategies for {loaded.name} (encoder always frozen)", title_justify="left")
    for column in ("strategy", "loss", "trains", "#TP"):
        table.add_column(column, justify="right" if column == "#TP" else "left")
    for row in rows:
        table.add_row(row["strategy"], row["loss"], row["trains"], f"{row['trainable_parameters']:,}")
    common.result_console().print(table)

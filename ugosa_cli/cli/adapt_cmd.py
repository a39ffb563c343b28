"""``ugosa adapt`` (adapt the model to one song and keep it) and ``ugosa strategies``."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ugosa_cli import __version__, hub
from ugosa_cli.audio import STDIN, Audio, collect_stems
from ugosa_cli.checkpoint import save_checkpoint
from ugosa_cli.cli import common, guidance
from ugosa_cli.cli.guidance import (
    Amp,
    Anchor,
    BatchSize,
    DeviceOpt,
    Epochs,
    Gamma,
    Guard,
    Holdout,
    Hop,
    IgnoreUnknown,
    LabelOptions,
    LabelsFormat,
    LabelsOpt,
    Lr,
    MapOpt,
    Margin,
    OptimizerOpt,
    Protocol,
    References,
    Seed,
    StepOpt,
    Steps,
    StrategyOpt,
    Window,
)
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import check_target, ensure_writable, file_target, resolved, sha256_file
from ugosa_cli.labels import Labels
from ugosa_cli.models import family_of
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.report import ReportRecorder, players, write_report
from ugosa_cli.separation import pick_device, stem_channel_blocks
from ugosa_cli.strategy import strategy_table


def song_digest(track: str, audio: Audio) -> str:
    """SHA-256 of the song file, or of its decoded samples when read from stdin."""
    if track == STDIN:
        return hashlib.sha256(audio.samples.tobytes()).hexdigest()
    return sha256_file(Path(track))


def _inputs(track: str, labels: str, model: str, references: list[str], config: str | None = None
            ) -> list[tuple[Path, str]]:
    """The files ``adapt`` reads, which its output must not replace (references that do not resolve fail later)."""
    inputs = [(Path(track), "the input song")] if track != STDIN else []
    if labels != STDIN:
        inputs.append((Path(labels), "the labels file"))
    if Path(model).is_file():
        inputs.append((Path(model), "the model it adapts"))
    if config is not None and Path(config).is_file():
        inputs.append((Path(config), "the model's configuration"))
    with contextlib.suppress(InputError):
        inputs += [(path, "a reference stem") for path in collect_stems(references, "--references").values()]
    return inputs


def adapt(
    track: Annotated[str, typer.Argument(help="The song to adapt to; '-' reads it from stdin.", show_default=False, metavar="TRACK")],
    labels: LabelsOpt = None,
    out: Annotated[
        Optional[str],
        typer.Option(
            "--out", "-o", metavar="FILE",
            help="Where to write the adapted model (default: TRACK-adapted.th); an existing file is refused unless "
            "--force.",
        ),
    ] = None,
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    config: common.ConfigSpec = None,
    model_type: common.ModelType = None,
    strategy: StrategyOpt = None,
    epochs: Epochs = None,
    steps: Steps = None,
    lr: Lr = None,
    step: StepOpt = None,
    holdout: Holdout = None,
    window: Window = None,
    hop: Hop = None,
    gamma: Gamma = None,
    guard: Guard = None,
    anchor: Anchor = None,
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
    downmix: common.Downmix = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and a time estimate; do not train.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the model file if it exists (an input is never replaced).")
    ] = False,
    report_page: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write a report page beside the model, named after it (MODEL.report.html): the waveform with "
            "the labels, each source's level with the pretrained and the adapted model (two more separations of the "
            "song), and the adaptation. One HTML file that works offline; its path is printed after the model's.",
        ),
    ] = False,
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
    target = Path(f"{name}-adapted.th") if out is None else file_target(out, "--out", f"{name}-adapted.th")
    if report_page and dry_run:
        raise InputError("--report and --dry-run: a dry run adapts nothing to report; leave out one of them")
    inputs = _inputs(track, labels, model, references or [], config)
    check_target(target, inputs, force=force or dry_run)
    page = target.with_suffix(".report.html")
    if report_page:
        check_target(page, [*inputs, (target, "the adapted model")], force=force)
    folder = resolved(target.parent)  # where the model goes: checked again when it is written
    ensure_writable(folder)
    with guidance.flags_named():
        request = guidance.adaptation_request(
            strategy=strategy, epochs=epochs, steps=steps, lr=lr, step=step, holdout=holdout, window=window, hop=hop, gamma=gamma, guard=guard, anchor=anchor, batch_size=batch_size,
            optimizer=optimizer, seed=seed, protocol=protocol, amp=amp,
        )
        loaded = common.load_model(model, offline=offline, config=config, model_type=model_type)
        audio = common.open_audio(track).read()
        options = LabelOptions(labels_format, mapping or [], ignore_unknown, margin)
        song_labels = guidance.song_labels(labels, options, loaded.model.sources, audio)
        pipeline = GuidedSeparator(loaded, device=pick_device(device), adaptation=request)
        plan = pipeline.plan(audio, song_labels, references=guidance.read_references(references or []), downmix=downmix)
        guidance.show_plan(plan)
        if dry_run:
            if json_out:
                common.emit_json({"plan": plan.to_dict()})
            else:
                common.emit(f"{plan.strategy}\t{plan.windows} windows\t{plan.steps} steps\t~{plan.estimated_seconds} s")
            return
        result = guidance.run_adaptation(pipeline, plan, follow_check=False)
    labels_digest = "stdin" if labels == STDIN else sha256_file(Path(labels))
    provenance = {
        "base_model": loaded.name,
        "base_sha256": loaded.sha256,
        "song": track,
        "song_sha256": song_digest(track, audio),
        "labels_sha256": labels_digest,
        "strategy": result.strategy.name,
        "settings": result.settings.to_dict(),
        "steps": result.steps,
        "stopped": result.stopped,
        "loss_history": result.history,
        "check": None if result.evidence is None else result.evidence.to_dict(),
        "decision": None if result.decision is None else result.decision.to_dict(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ugosa_version": __version__,
    }
    save_checkpoint(target, result.model, provenance, inside=folder)
    record = {"model": str(target), **guidance.result_json(result, plan)}
    if report_page:
        _write_page(page, pipeline, audio, track, song_labels, record, downmix=downmix, inside=folder)
        record["report"] = str(page)
    if json_out:
        common.emit_json(record)
    else:
        common.emit_path(target)
        if report_page:
            common.emit_path(page)


def _write_page(page: Path, pipeline: GuidedSeparator, audio: Audio, track: str, labels: Labels,
                record: dict[str, object], *, downmix: bool, inside: Path) -> None:
    """The report page of an adaptation: the song separated by the adapted and the pretrained model."""
    recorder = ReportRecorder(pipeline.sources, audio.samplerate, audio.frames)
    with common.Reporter() as reporter:
        task = reporter.add("separating with the adapted model for the report", None)
        for _ in recorder.after.tap(pipeline.stem_blocks(audio, progress=reporter.callback(task), downmix=downmix)):
            pass
    recorder.complete(lambda: pipeline.pretrained_blocks(audio, downmix=downmix),
                      stem_channel_blocks(audio, downmix=downmix))
    facts = [("model", pipeline.loaded.name), ("adapted model", str(record["model"])),
             ("song", f"{audio.duration:.1f} s at {audio.samplerate} Hz")]
    common.info(f"writing the report page {page}")
    write_report(page, recorder.report(
        "stdin" if track == STDIN else Path(track).stem, "adapt", names=("pretrained", "adapted"), labels=labels,
        facts=facts, players=players(page, None if track == STDIN else track, {}),
        adaptation={key: value for key, value in record.items() if key != "model"},
    ), inside=inside)


def strategies(
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    config: common.ConfigSpec = None,
    model_type: common.ModelType = None,
    json_out: common.JsonOut = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """List the fine-tuning strategies: what each trains and its number of trainable parameters (#TP)."""
    common.configure(quiet=quiet, debug=debug)
    loaded = common.load_model(model, offline=offline, config=config, model_type=model_type)
    rows = strategy_table(loaded.model)
    if json_out:
        common.emit_json({"model": loaded.name, "strategies": rows})
        return
    frozen = family_of(loaded.model).frozen
    table = Table(title=f"Strategies for {loaded.name} ({frozen} always frozen)", title_justify="left")
    for column in ("strategy", "loss", "trains", "#TP"):
        table.add_column(column, justify="right" if column == "#TP" else "left")
    for row in rows:
        table.add_row(str(row["strategy"]), str(row["loss"]), str(row["trains"]), f"{row['trainable_parameters']:,}")
    common.result_console().print(table)

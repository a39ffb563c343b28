"""``ugosa separate``: split songs into stems."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ugosa_cli import hub
from ugosa_cli.audio import STDIN, Audio, AudioFile, check_format, collect_stems
from ugosa_cli.cli import common, guidance
from ugosa_cli.errors import EXIT_FAILURE, InputError, UgosaError
from ugosa_cli.fsutil import ensure_writable, read_text_file, resolved
from ugosa_cli.labels import Labels
from ugosa_cli.output import (
    DEFAULT_TEMPLATE,
    REPORT_PAGE,
    StemSelection,
    StemWriter,
    check_batch,
    incomplete_set,
    write_separation,
)
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.report import ReportRecorder, players, report_pages, write_report
from ugosa_cli.separation import AudioBlocks, SeparationOptions, pick_device, stem_channel_blocks


def _split_names(values: list[str]) -> tuple[str, ...]:
    names = tuple(name.strip() for value in values for name in value.split(",") if name.strip())
    if values and not names:
        raise InputError(f"--stems {values[0]!r}: names no stem; give stem names such as --stems vocals,drums, or "
                         "leave --stems out to write every stem")
    return names


def track_name(path: str) -> str:
    return "stdin" if path == STDIN else Path(path).stem


def parent_name(path: str) -> str:
    """The ``{parent}`` field: the name of the song's folder (for stdin, of the current folder)."""
    return Path.cwd().name if path == STDIN else Path(os.path.abspath(path)).parent.name


def labels_for(spec: str, track: str, count: int) -> str:
    """The labels file of one song: a template with {dir} {track}, a folder of <track>.* files, or one file."""
    if "{" in spec:
        folder = "." if track == STDIN else str(Path(track).parent)
        try:
            return spec.format(dir=folder, track=track_name(track))
        except (KeyError, IndexError, ValueError):
            raise InputError(f"--labels {spec!r}: a template may use {{dir}} and {{track}} only") from None
    if Path(spec).is_dir():
        matches = sorted(p for p in Path(spec).iterdir() if p.is_file() and p.stem == track_name(track))
        if not matches:
            raise InputError(f"--labels {spec}: no labels file named {track_name(track)}.* in that folder")
        return str(matches[0])
    if count > 1:
        raise InputError("--labels FILE with several songs: give a folder or a template such as '{dir}/{track}.txt'")
    return spec


def read_track_list(source: str) -> list[str]:
    """Paths from ``--from-list`` (a file, or ``-`` for stdin): one per line; blank and ``#`` lines are skipped."""
    data = read_text_file(source, f"--from-list {source}", "a file with one audio path per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"--from-list {source}: not a UTF-8 text file; give one audio path per line") from None
    tracks = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "\0" in line:
            raise InputError(f"--from-list {source} line {number}: holds a NUL byte, which no file name can; "
                             "write one audio path per line")
        tracks.append(line)
    return tracks


def refuse_duplicates(tracks: list[str]) -> None:
    """Refuse a song given twice (as the same path or another path to the same file)."""
    seen: dict[Path, str] = {}
    for track in tracks:
        if track == STDIN:
            continue
        key = resolved(track)
        if key in seen:
            also = "" if seen[key] == track else f" (also as {seen[key]})"
            raise InputError(f"{track}: the same song is given twice{also}; give each song once")
        seen[key] = track


def batch_inputs(
    tracks: list[str], from_list: str | None, model: str, labels: str | None, references: list[str],
    config: str | None = None,
) -> list[tuple[Path, str]]:
    """Every file a batch reads, with what it is: the songs, the track list, a model file, each song's labels
    file and the reference stems, where they can be resolved (the others fail with their song)."""
    inputs = [(Path(track), f"the input {track}") for track in tracks if track != STDIN]
    if from_list is not None and from_list != STDIN:
        inputs.append((Path(from_list), f"the track list {from_list}"))
    if Path(model).is_file():
        inputs.append((Path(model), f"the model file {model}"))
    if config is not None and Path(config).is_file():
        inputs.append((Path(config), f"the model configuration {config}"))
    for track in tracks if labels is not None and labels != STDIN else ():
        with contextlib.suppress(InputError):
            found = labels_for(str(labels), track, len(tracks))
            inputs.append((Path(found), f"the labels file {found}"))
    with contextlib.suppress(InputError):
        inputs += [(path, f"the reference stem {path}") for path in collect_stems(references, "--references").values()]
    return inputs


def _failure(track: str, exc: UgosaError) -> str:
    """An error line of one track in a batch, naming the track unless the message already does."""
    return exc.message if track in exc.message else f"{track}: {exc.message}"


def _print_result(json_out: bool, record: dict[str, object], paths: dict[str, Path]) -> None:
    if json_out:
        common.emit_json({**record, "stems": {stem: str(path) for stem, path in paths.items()}})
    else:
        for path in paths.values():
            common.emit_path(path)
        if "report" in record:
            common.emit_path(str(record["report"]))


def _write_page(
    page: Path, recorder: ReportRecorder, pipeline: GuidedSeparator, audio: AudioBlocks, track: str,
    paths: dict[str, Path], labels: Labels | None, result: dict[str, object], *, downmix: bool, inside: Path,
) -> None:
    """One song's report page, once its stems are written."""
    recorder.complete(lambda: pipeline.pretrained_blocks(audio, downmix=downmix),
                      stem_channel_blocks(audio, downmix=downmix))
    steps = [step for step, done in (("adapted", pipeline.adapted), (pipeline.active_filter, True)) if done and step]
    facts = [("model", pipeline.name), ("made", " and ".join(steps) if steps else "the model as it is"),
             ("song", f"{audio.frames / audio.samplerate:.1f} s at {audio.samplerate} Hz")]
    adaptation = result.get("adaptation")
    common.info(f"writing the report page {page}")
    write_report(page, recorder.report(
        track_name(track), "separate", changed=bool(steps), names=("pretrained", " and ".join(steps) or "written"),
        labels=labels, facts=facts, players=players(page, None if track == STDIN else track, {"written": paths}),
        adaptation=adaptation if isinstance(adaptation, dict) else None,
    ), inside=inside)


def separate(
    tracks: Annotated[
        Optional[list[str]],
        typer.Argument(help="Audio files to separate; '-' reads one from stdin.", show_default=False, metavar="TRACK..."),
    ] = None,
    from_list: Annotated[
        Optional[str],
        typer.Option(
            "--from-list",
            help="Also separate the files listed in FILE ('-': stdin), one path per line; blank lines and lines "
            "starting with # are skipped.",
            metavar="FILE",
        ),
    ] = None,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="Skip a track whose stems all exist already, written together by one run "
            "(their paths are still printed); a track with stems of different runs is separated again."
        ),
    ] = False,
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    config: common.ConfigSpec = None,
    model_type: common.ModelType = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", metavar="DIR",
            help="Folder the stems are written under; a song's stems there already are replaced (see --skip-existing).",
        ),
    ] = Path("separated"),
    filename: Annotated[
        str,
        typer.Option(
            "--filename", metavar="TEMPLATE",
            help="Stem path template under --out; fields {model} {parent} (the song's folder) {track} {stem} {ext}.",
        ),
    ] = DEFAULT_TEMPLATE,
    fmt: common.FormatOpt = "wav",
    mp3: common.Mp3Opt = False,
    bits: common.BitsOpt = None,
    clip_mode: common.ClipModeOpt = "rescale",
    stems: Annotated[
        Optional[list[str]], typer.Option("--stems", help="Keep only these stems (comma-separated or repeated).", metavar="STEMS")
    ] = None,
    two_stems: Annotated[
        Optional[str], typer.Option("--two-stems", help="Write STEM and no_STEM (the sum of the others) only.", metavar="STEM")
    ] = None,
    segment: Annotated[
        Optional[float], typer.Option("--segment", help="Segment length in seconds, 1 to 60 (default: the model's, 8 s).", metavar="SEC")
    ] = None,
    overlap: Annotated[
        Optional[float],
        typer.Option("--overlap", help="Overlap between segments, 0 to 0.9 (default: 0.25; a --config model: its configuration's inference.num_overlap).", metavar="FRACTION"),
    ] = None,
    shifts: Annotated[
        int, typer.Option("--shifts", help="Average over this many random time shifts, 0 to 100 (slower, slightly better).", metavar="N")
    ] = 0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for the random shifts and the adaptation (window order); the same seed repeats a CPU run exactly.", metavar="N")] = 0,
    device: guidance.DeviceOpt = "auto",
    downmix: common.Downmix = False,
    labels: guidance.LabelsOpt = None,
    strategy: guidance.StrategyOpt = None,
    gate: Annotated[
        bool, typer.Option("--gate", help="Silence each stem outside its labelled regions (with short fades).")
    ] = False,
    resplit: Annotated[
        Optional[bool],
        typer.Option(
            "--resplit/--no-resplit",
            help="Apply the labels to the stems, frame by frame (the default with --labels): the mix is re-split among "
            "the stems labelled active, so resting stems come out silent and their sound goes to the playing ones. "
            "--no-resplit writes the model's own stems.",
            show_default=False,
        ),
    ] = None,
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
    protocol: guidance.Protocol = "auto",
    amp: guidance.Amp = False,
    references: guidance.References = None,
    labels_format: guidance.LabelsFormat = None,
    mapping: guidance.MapOpt = None,
    ignore_unknown: guidance.IgnoreUnknown = False,
    margin: guidance.Margin = 0.0,
    report_page: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also write a report page beside each song's stems (report.html, or <track>.report.html where songs "
            "share a folder): the waveform with the labels, each source's level before and after, the adaptation, "
            "and players. One HTML file that works offline; its path is printed after the stems'.",
        ),
    ] = False,
    json_out: common.JsonOut = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Separate songs into stems and print the written paths (or one JSON object per track with --json).

    With --labels, the model is first adapted to each song from where its instruments play, and the labels are
    then applied to its stems (--resplit). Part of each labelled rest is kept out of training to check the
    result: when adapting did not help there, or when the pretrained stems already leak little into the rests,
    the pretrained model's stems are written instead (with the labels applied), and the output says so. Labels
    that give rests for half of the sources or fewer are applied to the pretrained stems without adapting,
    unless --strategy is given.
    """
    common.configure(quiet=quiet, debug=debug)
    if resplit is None:
        resplit = labels is not None and not gate
    if gate and resplit:
        raise InputError("--gate and --resplit exclude each other: --gate drops the sound of resting stems, --resplit moves it")
    if (gate or resplit) and labels is None:
        raise InputError(f"{'--gate' if gate else '--resplit'} needs --labels: it applies the labelled regions to the stems")
    tracks = list(tracks or [])
    if from_list is not None:
        if from_list == STDIN and STDIN in tracks:
            raise InputError("--from-list - and the track '-' cannot both read stdin")
        tracks += read_track_list(from_list)
    if not tracks:
        raise InputError("no tracks to separate: give audio files, or --from-list FILE with one path per line")
    if tracks.count(STDIN) > 1:
        raise InputError("'-' (stdin) can be given only once")
    refuse_duplicates(tracks)
    if stems is not None and two_stems is not None:
        raise InputError(f"--two-stems {two_stems} and --stems {','.join(stems)}: give one of them (--two-stems "
                         "writes STEM and no_STEM; --stems keeps the stems named)")
    spec = common.output_spec(out, filename, fmt=fmt, mp3=mp3, bits=bits, clip_mode=clip_mode)
    with guidance.flags_named():
        options = SeparationOptions(segment=segment, overlap=overlap, shifts=shifts, seed=seed)
        request = None if labels is None else guidance.adaptation_request(
            strategy=strategy, epochs=epochs, steps=steps, lr=lr, step=step, holdout=holdout, window=window, hop=hop, gamma=gamma, guard=guard, anchor=anchor, batch_size=batch_size,
            optimizer=optimizer, seed=seed, protocol=protocol, amp=amp,
        )
    label_options = guidance.LabelOptions(labels_format, mapping or [], ignore_unknown, margin)
    keep = _split_names(stems) if stems is not None else None
    torch_device = pick_device(device)
    ensure_writable(out)
    loaded = common.load_model(model, offline=offline, config=config, model_type=model_type)
    common.info(f"model {loaded.name} on {torch_device}")
    with guidance.flags_named():
        pipeline = GuidedSeparator(
            loaded, device=torch_device, options=options, adaptation=request,
            post_filter="gate" if gate else "resplit" if resplit else None, filter_few=True,
        )
    selection = StemSelection(keep, two_stems)
    written = selection.names(pipeline.sources)
    planned = [(track, spec.paths(model=pipeline.name, track=track_name(track), stems=written,
                                  parent=parent_name(track))) for track in tracks]
    pages = report_pages(planned, {track: track_name(track) for track in tracks}) if report_page else {}
    check_batch([(track, {**paths, REPORT_PAGE: pages[track]} if pages else paths) for track, paths in planned],
                batch_inputs(tracks, from_list, model, labels, references or [], config), filename)
    failures: list[str] = []
    with common.Reporter() as reporter:
        for track, paths in planned:
            name = track_name(track)
            record: dict[str, object] = {"input": track, "track": name, "model": pipeline.name}
            if skip_existing:
                problem = incomplete_set(paths)
                if problem is None:
                    common.info(f"skipping {track}: its {len(paths)} stems exist already")
                    _print_result(json_out, {**record, "skipped": True}, paths)
                    continue
                if any(path.is_file() for path in paths.values()):
                    common.info(f"separating {track} again: {problem}")
            try:
                with guidance.flags_named():
                    opened = common.open_audio(track)
                    check_format(spec.fmt, opened.samplerate)  # before any work, not when the stems are done
                    audio: AudioFile | Audio = opened
                    report: dict[str, object] = {}
                    song_labels = None
                    if labels is not None:
                        audio = opened.read()  # adaptation needs the whole song; separation then reuses it
                        song_labels = guidance.song_labels(labels_for(labels, track, len(tracks)), label_options,
                                                           pipeline.sources, audio)
                        plan = pipeline.plan(audio, song_labels, references=guidance.read_references(references or []),
                                             downmix=downmix)
                        guidance.show_plan(plan)
                        result = guidance.run_adaptation(pipeline, plan)
                        report = {"adaptation": guidance.result_json(result, plan)}
                    protect = () if track == STDIN else (Path(track),)
                    task = reporter.add(f"separating {name}", None)
                    recorder = ReportRecorder(pipeline.sources, audio.samplerate, audio.frames) if pages else None
                    blocks = pipeline.stem_blocks(audio, song_labels, reporter.callback(task), downmix=downmix,
                                                  pretrained_tap=recorder.before.tap if recorder else None)
                    with StemWriter(paths, audio.samplerate, min(audio.channels, 2), spec, protect) as writer:
                        write_separation(recorder.after.tap(blocks) if recorder else blocks, pipeline.sources, writer,
                                         selection)
                    if recorder is not None:
                        _write_page(pages[track], recorder, pipeline, audio, track, paths, song_labels, report,
                                    downmix=downmix, inside=spec.resolved_root)
                        report["report"] = str(pages[track])
            except UgosaError as exc:
                if len(tracks) == 1:
                    raise
                failures.append(track)
                common.error(_failure(track, exc))
                continue
            audio_facts = {"samplerate": audio.samplerate, "channels": audio.channels, "duration": audio.duration}
            _print_result(json_out, {**record, "skipped": False, **audio_facts, **report}, paths)
    if failures:
        shown = ", ".join(failures[:5]) + (f" and {len(failures) - 5} more" if len(failures) > 5 else "")
        common.error(f"{len(failures)} of {len(tracks)} tracks failed: {shown}")
        raise typer.Exit(EXIT_FAILURE)

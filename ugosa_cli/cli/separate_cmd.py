"""``ugosa separate``: split songs into stems."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Optional

import typer

from ugosa_cli import hub
from ugosa_cli.audio import STDIN, Audio, AudioFile
from ugosa_cli.cli import adapt_cmd, common
from ugosa_cli.errors import EXIT_FAILURE, InputError, UgosaError
from ugosa_cli.fsutil import ensure_writable, read_text_file
from ugosa_cli.output import (
    DEFAULT_TEMPLATE, Gate, OutputSpec, Resplit, StemFilter, StemSelection, StemWriter, write_separation,
)
from ugosa_cli.separation import SeparationOptions, mean_blocks, pick_device, separate_blocks, stem_channel_blocks


def _split_names(values: list[str]) -> tuple[str, ...]:
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def track_name(path: str) -> str:
    return "stdin" if path == STDIN else Path(path).stem


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
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _failure(track: str, exc: UgosaError) -> str:
    """An error line of one track in a batch, naming the track unless the message already does."""
    return exc.message if track in exc.message else f"{track}: {exc.message}"


def _report(json_out: bool, record: dict[str, object], paths: dict[str, Path]) -> None:
    if json_out:
        common.emit_json({**record, "stems": {stem: str(path) for stem, path in paths.items()}})
    else:
        for path in paths.values():
            common.emit(str(path))


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
            "--skip-existing", help="Skip a track whose stems all exist already (their paths are still printed)."
        ),
    ] = False,
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder the stems are written under.", metavar="DIR")] = Path("separated"),
    filename: Annotated[
        str, typer.Option("--filename", help="Stem path template under --out; fields {model} {track} {stem} {ext}.", metavar="TEMPLATE")
    ] = DEFAULT_TEMPLATE,
    fmt: Annotated[str, typer.Option("--format", help="Output container: wav or flac.", metavar="wav|flac")] = "wav",
    bits: Annotated[int, typer.Option("--bits", help="Sample format: 16, 24 (integer) or 32 (float, WAV only).", metavar="16|24|32")] = 16,
    clip_mode: Annotated[
        str,
        typer.Option(
            "--clip-mode",
            metavar="rescale|clamp|none",
            help="rescale: scale all stems of a track by one factor if any clips (they still sum to the mix); "
            "clamp: clip samples; none: write as is.",
        ),
    ] = "rescale",
    stems: Annotated[
        Optional[list[str]], typer.Option("--stems", help="Keep only these stems (comma-separated or repeated).", metavar="STEMS")
    ] = None,
    two_stems: Annotated[
        Optional[str], typer.Option("--two-stems", help="Write STEM and no_STEM (the sum of the others) only.", metavar="STEM")
    ] = None,
    segment: Annotated[
        Optional[float], typer.Option("--segment", help="Segment length in seconds (default: the model's, 8 s).", metavar="SEC")
    ] = None,
    overlap: Annotated[float, typer.Option("--overlap", help="Overlap between segments, in [0, 1).", metavar="FRACTION")] = 0.25,
    shifts: Annotated[
        int, typer.Option("--shifts", help="Average over this many random time shifts (slower, slightly better).", metavar="N")
    ] = 0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for the random shifts and the adaptation.", metavar="N")] = None,
    device: adapt_cmd.DeviceOpt = "auto",
    downmix: Annotated[
        bool, typer.Option("--downmix", help="Mix inputs with more than 2 channels down to stereo instead of failing.")
    ] = False,
    labels: adapt_cmd.LabelsOpt = None,
    strategy: adapt_cmd.StrategyOpt = None,
    gate: Annotated[
        bool, typer.Option("--gate", help="Silence each stem outside its labelled regions (with short fades).")
    ] = False,
    resplit: Annotated[
        bool,
        typer.Option(
            "--resplit",
            help="Re-split the mix among the stems labelled active, frame by frame: resting stems come out silent "
            "and the stems still add up to the mix.",
        ),
    ] = False,
    epochs: adapt_cmd.Epochs = None,
    lr: adapt_cmd.Lr = None,
    window: adapt_cmd.Window = None,
    hop: adapt_cmd.Hop = None,
    gamma: adapt_cmd.Gamma = None,
    batch_size: adapt_cmd.BatchSize = None,
    optimizer: adapt_cmd.OptimizerOpt = None,
    protocol: adapt_cmd.Protocol = "auto",
    amp: adapt_cmd.Amp = False,
    references: adapt_cmd.References = None,
    labels_format: adapt_cmd.LabelsFormat = None,
    mapping: adapt_cmd.MapOpt = None,
    ignore_unknown: adapt_cmd.IgnoreUnknown = False,
    margin: adapt_cmd.Margin = 0.0,
    json_out: common.JsonOut = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Separate songs into stems and print the written paths (or one JSON object per track with --json).

    With --labels, the model is first adapted to each song from where its instruments play.
    """
    common.configure(quiet=quiet, debug=debug)
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
    spec = OutputSpec(root=out, template=filename, fmt=fmt, bits=bits, clip_mode=clip_mode)  # type: ignore[arg-type]
    options = SeparationOptions(segment=segment, overlap=overlap, shifts=shifts, seed=seed)
    keep = _split_names(stems or []) or None
    torch_device = pick_device(device)
    ensure_writable(out)
    loaded = common.load_model(model, offline=offline)
    common.info(f"model {loaded.name} on {torch_device}")
    base_state = {k: v.clone() for k, v in loaded.model.state_dict().items()} if labels else None
    trains = labels is not None and adapt_cmd.effective_strategy(strategy, adapt_cmd.recommended(loaded, protocol)).trains
    adapted_name = f"{loaded.name}-adapted" if trains else loaded.name
    # --resplit after adapting splits the mix by the mean of the pretrained and the adapted model's stems.
    pretrained = copy.deepcopy(loaded.model) if resplit and trains else None
    selection = StemSelection(keep, two_stems)
    written = selection.names(loaded.model.sources)
    failures: list[str] = []
    with common.Reporter() as reporter:
        for track in tracks:
            name = track_name(track)
            record: dict[str, object] = {"input": track, "track": name, "model": adapted_name}
            paths = spec.paths(model=adapted_name, track=name, stems=written)
            if skip_existing and all(path.is_file() for path in paths.values()):
                common.info(f"skipping {track}: its {len(paths)} stems exist already")
                _report(json_out, {**record, "skipped": True}, paths)
                continue
            try:
                audio: AudioFile | Audio = common.open_audio(track)
                report: dict[str, object] = {}
                stem_filter: StemFilter | None = None
                if labels is not None:
                    assert base_state is not None
                    loaded.model.load_state_dict(base_state)
                    guidance = adapt_cmd.GuidanceOptions(
                        labels_for(labels, track, len(tracks)), labels_format, mapping or [], ignore_unknown, margin,
                        strategy, epochs, lr, window, hop, gamma, batch_size, optimizer, seed, protocol, amp,
                        references or [],
                    )
                    audio = audio.read()  # adaptation needs the whole song; separation then reuses it
                    result, plan, song_labels = adapt_cmd.guided_adaptation(
                        loaded, track, audio, guidance, device, downmix=downmix
                    )
                    assert result is not None
                    report = {"adaptation": adapt_cmd.result_json(result, plan)}
                    if gate:
                        stem_filter = Gate(song_labels, audio.samplerate, audio.frames)
                    elif resplit:
                        mixture = stem_channel_blocks(audio, downmix=downmix)
                        stem_filter = Resplit(song_labels, audio.samplerate, audio.frames, mixture)
                protect = () if track == STDIN else (Path(track),)
                task = reporter.add(f"separating {name}", None)
                blocks = separate_blocks(
                    loaded.model, audio, options, torch_device, reporter.callback(task), downmix=downmix
                )
                if pretrained is not None:
                    blocks = mean_blocks(blocks, separate_blocks(pretrained, audio, options, torch_device, downmix=downmix))
                with StemWriter(paths, audio.samplerate, min(audio.channels, 2), spec, protect) as writer:
                    write_separation(blocks, loaded.model.sources, writer, selection, stem_filter)
            except UgosaError as exc:
                if len(tracks) == 1:
                    raise
                failures.append(track)
                common.error(_failure(track, exc))
                continue
            audio_facts = {"samplerate": audio.samplerate, "channels": audio.channels, "duration": audio.duration}
            _report(json_out, {**record, "skipped": False, **audio_facts, **report}, paths)
    if failures:
        shown = ", ".join(failures[:5]) + (f" and {len(failures) - 5} more" if len(failures) > 5 else "")
        common.error(f"{len(failures)} of {len(tracks)} tracks failed: {shown}")
        raise typer.Exit(EXIT_FAILURE)

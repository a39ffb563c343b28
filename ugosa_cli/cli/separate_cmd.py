"""``ugosa separate``: split songs into stems."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ugosa_cli.audio import STDIN, read_audio
from ugosa_cli.cli import common
from ugosa_cli.errors import EXIT_FAILURE, InputError, UgosaError
from ugosa_cli.output import DEFAULT_TEMPLATE, OutputSpec, select_stems, write_stems
from ugosa_cli.separation import DEVICES, SeparationOptions, pick_device, separate_audio


def _split_names(values: list[str]) -> tuple[str, ...]:
    return tuple(name.strip() for value in values for name in value.split(",") if name.strip())


def track_name(path: str) -> str:
    return "stdin" if path == STDIN else Path(path).stem


def separate(
    tracks: Annotated[list[str], typer.Argument(help="Audio files to separate; '-' reads one from stdin.", show_default=False)],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Registry name, checkpoint file or http(s) URL.")
    ] = common.DEFAULT_MODEL,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder the stems are written under.")] = Path("separated"),
    filename: Annotated[
        str, typer.Option("--filename", help="Stem path template under --out; fields {model} {track} {stem} {ext}.")
    ] = DEFAULT_TEMPLATE,
    fmt: Annotated[str, typer.Option("--format", help="Output container: wav or flac.")] = "wav",
    bits: Annotated[int, typer.Option("--bits", help="Sample format: 16, 24 (integer) or 32 (float, WAV only).")] = 16,
    clip_mode: Annotated[
        str,
        typer.Option(
            "--clip-mode",
            help="rescale: scale all stems of a track by one factor if any clips (they still sum to the mix); "
            "clamp: clip samples; none: write as is.",
        ),
    ] = "rescale",
    stems: Annotated[
        Optional[list[str]], typer.Option("--stems", help="Keep only these stems (comma-separated or repeated).")
    ] = None,
    two_stems: Annotated[
        Optional[str], typer.Option("--two-stems", help="Write STEM and no_STEM (the sum of the others) only.")
    ] = None,
    segment: Annotated[
        Optional[float], typer.Option("--segment", help="Segment length in seconds (default: the model's, 8 s).")
    ] = None,
    overlap: Annotated[float, typer.Option("--overlap", help="Overlap between segments, in [0, 1).")] = 0.25,
    shifts: Annotated[
        int, typer.Option("--shifts", help="Average over this many random time shifts (slower, slightly better).")
    ] = 0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for the random shifts.")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help=f"One of {', '.join(DEVICES)}.")] = "auto",
    downmix: Annotated[
        bool, typer.Option("--downmix", help="Mix inputs with more than 2 channels down to stereo instead of failing.")
    ] = False,
    json_out: common.JsonOut = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Separate songs into stems and print the written paths (or one JSON object per track with --json)."""
    common.configure(quiet=quiet, debug=debug)
    if tracks.count(STDIN) > 1:
        raise InputError("'-' (stdin) can be given only once")
    spec = OutputSpec(root=out, template=filename, fmt=fmt, bits=bits, clip_mode=clip_mode)  # type: ignore[arg-type]
    options = SeparationOptions(segment=segment, overlap=overlap, shifts=shifts, seed=seed)
    keep = _split_names(stems or []) or None
    torch_device = pick_device(device)
    loaded = common.load_model(model, offline=offline)
    common.info(f"model {loaded.name} on {torch_device}")
    failures: list[UgosaError] = []
    with common.Reporter() as reporter:
        for track in tracks:
            name = track_name(track)
            try:
                audio = read_audio(track)
                task = reporter.add(f"separating {name}", None)
                estimates = separate_audio(
                    loaded.model, audio, options, torch_device, reporter.callback(task), downmix=downmix
                )
                selected = select_stems(estimates, loaded.model.sources, keep=keep, two_stems=two_stems)
                protect = () if track == STDIN else (Path(track),)
                paths = write_stems(selected, audio.samplerate, spec, model=loaded.name, track=name, protect=protect)
            except UgosaError as exc:
                if len(tracks) == 1:
                    raise
                failures.append(exc)
                common.error(exc.message)
                continue
            if json_out:
                common.emit_json(
                    {
                        "input": track,
                        "track": name,
                        "model": loaded.name,
                        "samplerate": audio.samplerate,
                        "channels": audio.channels,
                        "duration": audio.duration,
                        "stems": {stem: str(path) for stem, path in paths.items()},
                    }
                )
            else:
                for path in paths.values():
                    common.emit(str(path))
    if failures:
        common.error(f"{len(failures)} of {len(tracks)} tracks failed")
        raise typer.Exit(EXIT_FAILURE)

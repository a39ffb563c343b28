"""``ugosa labels draft``: a first label track drawn from the pretrained stems, for a person to correct."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ugosa_cli import hub
from ugosa_cli.audio import STDIN, AudioFile, fit_length, match_channels, resample
from ugosa_cli.cli import common, guidance, labels_cmd
from ugosa_cli.draft import MIN_SECONDS, DraftSettings, draft_labels
from ugosa_cli.errors import InputError
from ugosa_cli.fsutil import write_atomic
from ugosa_cli.labels import format_clock, format_labels, labels_json
from ugosa_cli.pipeline import GuidedSeparator
from ugosa_cli.separation import pick_device, stem_channel_blocks
from ugosa_cli.sources import DEFAULT_SOURCES

_DEFAULTS = DraftSettings()
# The flag that sets each draft setting, so its errors name what the user typed.
_FLAGS = {"own": "--threshold", "share": "--min-share", "min_region": "--min-region", "min_gap": "--min-gap",
          "presence": "--presence"}


def _names(values: list[str], known: tuple[str, ...]) -> list[str] | None:
    names = [name.strip().lower() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise InputError(f"--sources {', '.join(unknown)}: unknown source; the sources are {', '.join(known)}")
    return names or None


def _stems_from(folder: Path, song: AudioFile, sources: tuple[str, ...]) -> tuple[list[str], Iterator[np.ndarray]]:
    """The stems already written in ``folder`` (files named after the sources), at the song's rate, channels and
    length, as one block (sources without a file are silent there and left out of the labels)."""
    if not folder.is_dir():
        raise InputError(f"--stems-dir {folder}: no such folder")
    files = labels_cmd._stem_files([folder])
    channels = min(song.channels, 2)
    stems = np.zeros((len(sources), channels, song.frames), np.float32)
    for index, name in enumerate(sources):
        if name not in files:
            continue
        stem = common.open_audio(files[name]).read()
        if abs(stem.duration - song.duration) > 0.1:
            common.warn(f"{files[name]}: {stem.duration:.2f} s long, the song {song.duration:.2f} s; trimmed or padded")
        samples = resample(match_channels(stem.samples, channels, downmix=True, label=str(files[name])),
                           stem.samplerate, song.samplerate)
        stems[index] = fit_length(samples, song.frames)
    return [name for name in sources if name in files], iter([stems])


def draft(
    track: Annotated[str, typer.Argument(help="The song; '-' reads it from stdin.", show_default=False, metavar="SONG")],
    output: Annotated[
        Optional[str],
        typer.Option("--output", "-o", metavar="FILE",
                     help="Write the labels here (atomically) and print the path; '-' or none: the labels on stdout. "
                     "An existing file is refused unless --force."),
    ] = None,
    fmt: Annotated[
        Optional[str],
        typer.Option("--format", "-f", metavar="FORMAT",
                     help="audacity, csv, tsv, frames or json (default: from -o's suffix, else audacity)."),
    ] = None,
    sources: Annotated[
        Optional[list[str]],
        typer.Option("--sources", metavar="NAMES", help="Label only these sources (comma-separated or repeated); "
                     "the others stay unconstrained."),
    ] = None,
    stems_dir: Annotated[
        Optional[Path],
        typer.Option("--stems-dir", metavar="DIR", help="Use the stems already in DIR (drums.wav, bass.wav, ..., "
                     "as `ugosa separate` writes them) instead of separating the song."),
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", metavar="DB", help="A stem plays where its level comes within DB of its "
                            "own loud level (its 95th percentile).")
    ] = _DEFAULTS.own,
    min_share: Annotated[
        float, typer.Option("--min-share", metavar="DB", help="... and holds at least DB of the song's power there "
                            "(leakage into a resting stem stays below it).")
    ] = _DEFAULTS.share,
    min_region: Annotated[
        float, typer.Option("--min-region", metavar="SEC", help="Drop active regions shorter than this.")
    ] = _DEFAULTS.min_region,
    min_gap: Annotated[
        float, typer.Option("--min-gap", metavar="SEC", help="Fill silences shorter than this.")
    ] = _DEFAULTS.min_gap,
    presence: Annotated[
        float, typer.Option("--presence", metavar="DB", help="Leave out (unconstrained) a source whose stem never "
                            "holds more than DB of the song's power (its 95th percentile): the model finds too "
                            "little of it to tell where it plays.")
    ] = _DEFAULTS.presence,
    model: common.ModelSpec = hub.DEFAULT_MODEL,
    config: common.ConfigSpec = None,
    model_type: common.ModelType = None,
    device: guidance.DeviceOpt = "auto",
    downmix: common.Downmix = False,
    force: labels_cmd.ForceOpt = False,
    json_out: common.JsonOut = False,
    offline: common.Offline = False,
    quiet: common.Quiet = False,
    debug: common.Debug = False,
) -> None:
    """Draft labels from the pretrained model's stems: where each source seems to play. Open them in Audacity
    over the song (File > Import > Labels), correct them, export them, and adapt with them."""
    common.configure(quiet=quiet, debug=debug)
    with guidance.flags_named(_FLAGS):
        settings = DraftSettings(own=threshold, share=min_share, min_region=min_region, min_gap=min_gap,
                                 presence=presence, hysteresis=_DEFAULTS.hysteresis, smooth=_DEFAULTS.smooth)
    # before any work: never over the song or a stem it reads, nor over a file unless --force
    inputs = [] if track == STDIN else [(Path(track), "the input song")]
    if output not in (None, "-") and stems_dir is not None and stems_dir.is_dir():
        inputs += [(path, f"the {name} stem") for name, path in labels_cmd._stem_files([stems_dir]).items()]
    written = labels_cmd.output_target(None if output == "-" else output, inputs, force)
    target = None if written is None else written[0]
    fmt = labels_cmd._output_format(fmt, target, "--format")
    song = common.open_audio(track)
    if song.duration < MIN_SECONDS:
        raise InputError(f"{song.source}: the song is {song.duration:.2f} s long; a draft needs at least "
                         f"{MIN_SECONDS:g} s")
    if song.channels > 2 and not downmix:
        raise InputError(f"{song.source}: has {song.channels} channels; ugosa drafts mono or stereo audio "
                         "(add --downmix to mix it down to stereo)")
    names: tuple[str, ...]
    if stems_dir is not None:
        names = DEFAULT_SOURCES
        chosen = _names(sources or [], names)
        found, blocks = _stems_from(stems_dir, song, names)
        missing = [name for name in (chosen or []) if name not in found]
        if missing:
            raise InputError(f"--stems-dir {stems_dir}: no stem for {', '.join(missing)}")
        chosen = chosen or found
        model_name = None
    else:
        loaded = common.load_model(model, offline=offline, config=config, model_type=model_type)
        torch_device = pick_device(device)
        pipeline = GuidedSeparator(loaded, device=torch_device)
        names = pipeline.sources
        chosen = _names(sources or [], names)
        common.info(f"separating {song.source} with {loaded.name} on {torch_device}")
        model_name = loaded.name
    with common.Reporter() as reporter:
        if stems_dir is None:
            task = reporter.add(f"separating {Path(song.source).stem}", None)
            blocks = pipeline.stem_blocks(song, progress=reporter.callback(task), downmix=downmix)
        labels = draft_labels(blocks, stem_channel_blocks(song, downmix=downmix), song.samplerate, names,
                              only=chosen, settings=settings, origin="draft")
    for note in labels.warnings:
        common.warn(note)
    for source in names:
        if source in labels.unconstrained:
            continue
        spans = labels.regions[source]
        active = labels.active_seconds(source)
        common.info(f"{source}: {len(spans)} region(s), active {format_clock(active)} of {format_clock(song.duration)}")
    text = format_labels(labels, fmt)
    if written is not None:
        write_atomic(written[0], text.encode("utf-8"), written[1])
    if json_out:
        common.emit_json({"input": track, "output": None if target is None else str(target), "model": model_name,
                          "stems_dir": None if stems_dir is None else str(stems_dir), "format": fmt,
                          "duration": labels.duration, "labels": labels_json(labels)})
    elif target is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        common.emit_path(target)
        common.info(f"check it with `ugosa labels show {target} --audio {track}`, correct it in Audacity "
                    "(File > Import > Labels), then adapt with it: `ugosa separate SONG --labels FILE`")


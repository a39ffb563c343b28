"""What every command shares: the streams, shared options, and progress reporting.

stdout carries results only (paths, or JSON with ``--json``); stderr carries progress, logs, warnings
and errors. Rich bars are drawn only when stderr is a terminal; otherwise progress becomes a plain line
every few seconds. ``--quiet`` silences all but warnings and errors; ``NO_COLOR`` is respected.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ugosa_cli import hub
from ugosa_cli.audio import AudioFile
from ugosa_cli.checkpoint import LoadedModel
from ugosa_cli.errors import InputError
from ugosa_cli.output import OutputSpec
from ugosa_cli.safetext import UNSAFE_TEXT, printable


@dataclass
class OutputState:
    quiet: bool = False
    debug: bool = False


STATE = OutputState()
_stderr_console: Console | None = None


def shown_path(path: str | Path) -> str:
    """A path as a result line shows it: as it is, or, when it holds a character :func:`printable` escapes, in
    the shell's ``$'...'`` quoting with those escapes (``$'out/evil\\u202etxt.exe/vocals.wav'``), which bash and
    zsh read back as the real name, so the line still names the file while showing what is in its name."""
    text = str(path)
    if not UNSAFE_TEXT.search(text):
        return text
    return "$'" + printable(text.replace("\\", "\\\\").replace("'", "\\'")) + "'"


def configure(*, quiet: bool = False, debug: bool = False) -> None:
    """Set the process-wide output options of the running command."""
    global _stderr_console
    STATE.quiet = quiet
    STATE.debug = debug or STATE.debug
    _stderr_console = None


def no_color() -> bool:
    """True when the user asked for no colour: ``NO_COLOR`` set and not empty (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def stderr() -> Console:
    """The console for everything that is not a result."""
    global _stderr_console
    if _stderr_console is None:
        _stderr_console = Console(stderr=True, highlight=False, no_color=no_color())
    return _stderr_console


def result_console() -> Console:
    """A console on stdout for results shown as tables (plain text when stdout is not a terminal)."""
    return Console(highlight=False, no_color=no_color())


def info(message: str) -> None:
    """A log line on stderr (hidden by --quiet)."""
    if not STATE.quiet:
        stderr().print(printable(message), markup=False, soft_wrap=True)


def warn(message: str) -> None:
    """A warning line on stderr (always shown)."""
    stderr().print(f"ugosa: warning: {printable(message)}", markup=False, style="yellow", soft_wrap=True)


def open_audio(path: str | Path) -> AudioFile:
    """Open an audio file (``-``: stdin), warning about what is wrong with it but still usable (a cut-off WAV)."""
    audio = AudioFile(path)
    for line in audio.warnings:
        warn(line)
    return audio


def error(message: str) -> None:
    """An error line on stderr (always shown)."""
    stderr().print(f"ugosa: error: {printable(message)}", markup=False, style="red", soft_wrap=True)


def emit(line: str) -> None:
    """A result line on stdout, control characters but tabs escaped (:func:`printable`)."""
    sys.stdout.write(printable(line, keep="\t") + "\n")
    sys.stdout.flush()


def emit_path(path: str | Path) -> None:
    """A path as a result line on stdout (:func:`shown_path`)."""
    sys.stdout.write(shown_path(path) + "\n")
    sys.stdout.flush()


def emit_json(value: Any) -> None:
    """A result as one JSON document on one line of stdout.

    JSON escapes C0 controls itself; DEL, C1 controls, bidi overrides and the surrogates of a file name's
    bytes that are not UTF-8 are written as ``\\uXXXX`` too, which is the same JSON value (Python reads such a
    name back as the one it gave).
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(UNSAFE_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")
    sys.stdout.flush()


class Reporter:
    """Progress for long tasks: rich bars on a terminal, periodic plain lines otherwise, nothing when quiet."""

    def __init__(self, *, transfer: bool = False, interval: float = 5.0) -> None:
        self._interval = interval
        self._rich: Progress | None = None
        self._plain: dict[int, tuple[str, float, float, float]] = {}
        self._next_id = 0
        if STATE.quiet:
            self._mode = "off"
        elif stderr().is_terminal:
            self._mode = "rich"
            columns: list[Any] = [TextColumn("{task.description}", markup=False), BarColumn()]
            if transfer:
                columns += [DownloadColumn(), TransferSpeedColumn()]
            else:
                columns += [TaskProgressColumn(), MofNCompleteColumn()]
            columns += [TextColumn("{task.fields[status]}", markup=False), TimeElapsedColumn(), TimeRemainingColumn()]
            self._rich = Progress(*columns, console=stderr(), transient=False)
        else:
            self._mode = "plain"

    def __enter__(self) -> Reporter:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def add(self, description: str, total: float | None) -> int:
        description = printable(description)
        if self._rich is not None:
            return self._rich.add_task(description, total=total, status="")
        task = self._next_id
        self._next_id += 1
        self._plain[task] = (description, total or 0.0, 0.0, 0.0)
        return task

    def update(self, task: int, completed: float, total: float | None = None, status: str = "") -> None:
        status = printable(status)
        if self._mode == "rich" and self._rich is not None:
            self._rich.update(TaskID(task), completed=completed, total=total, status=status)
        elif self._mode == "plain":
            description, old_total, _, last = self._plain[task]
            total = total if total is not None else old_total
            now = time.monotonic()
            done = total and completed >= total
            if now - last >= self._interval or done:
                percent = f"{100 * completed / total:5.1f}%" if total else f"{completed:g}"
                stderr().print(f"{description}: {percent} {status}".rstrip(), markup=False, highlight=False)
                last = now
            self._plain[task] = (description, total, completed, last)

    def callback(self, task: int) -> Callable[[float, float], None]:
        """A ``(done, total)`` callback for library functions."""
        return lambda done, total: self.update(task, done, total)


# Shared option types: one definition each, so help texts and names stay consistent.
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only results, warnings and errors.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")]
Downmix = Annotated[
    bool, typer.Option("--downmix", help="Mix inputs with more than 2 channels down to stereo instead of failing.")
]
ModelSpec = Annotated[
    str, typer.Option("--model", "-m", "--name", "-n", metavar="NAME|FILE|URL", help="Registry name (see `ugosa model list`), checkpoint or demucs v4 file, MSST weights (.ckpt, .pth, .safetensors; with --config), or http(s) URL (#sha256=HEX pins its hash); -n/--name as in demucs.")
]
ConfigSpec = Annotated[
    Optional[str],
    typer.Option(
        "--config", metavar="FILE|URL",
        help="The YAML configuration of the BS-RoFormer, Mel-Band RoFormer or SCNet model whose weights --model "
        "gives (as Music-Source-Separation-Training and UVR share them); a URL may end in #sha256=HEX.",
    ),
]
ModelType = Annotated[
    Optional[str],
    typer.Option(
        "--model-type", metavar="bs_roformer|mel_band_roformer|scnet",
        help="The type of the --config model, where the configuration does not tell it.",
    ),
]
Offline = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Never use the network; use only cached or local models. Also on with UGOSA_OFFLINE=1 (or true, yes, "
        "on; 0, false, no, off or empty: off).",
    ),
]

# How stems are written (``separate``, ``filter``).
FormatOpt = Annotated[
    str, typer.Option("--format", help="Output container: wav, flac or mp3 (320 kbps; --bits does not apply).", metavar="wav|flac|mp3")
]
Mp3Opt = Annotated[bool, typer.Option("--mp3", help="Same as --format mp3 (as demucs spells it).")]
BitsOpt = Annotated[
    Optional[int],
    typer.Option("--bits", help="Sample format: 16, 24 (integer) or 32 (float, WAV only); default 16.", metavar="16|24|32"),
]
ClipModeOpt = Annotated[
    str,
    typer.Option(
        "--clip-mode",
        metavar="rescale|clamp|none",
        help="rescale: scale all stems of a track by one factor if any clips (they still sum to the mix); "
        "clamp: clip samples; none: write as is.",
    ),
]


def output_spec(out: Path, filename: str, *, fmt: str, mp3: bool, bits: int | None, clip_mode: str) -> OutputSpec:
    """How stems are written, from the options above (``--mp3`` is ``--format mp3``; ``bits`` None: 16)."""
    if mp3 and fmt not in ("wav", "mp3"):
        raise InputError(f"--mp3 and --format {fmt} disagree; give one of them")
    fmt = "mp3" if mp3 else fmt
    if fmt == "mp3" and bits is not None:
        raise InputError(f"--bits {bits} does not apply to MP3 (written at 320 kbps); leave --bits out, or use "
                         "--format wav or flac")
    return OutputSpec(root=out, template=filename, fmt=fmt, bits=16 if bits is None else bits, clip_mode=clip_mode)  # type: ignore[arg-type]


def parse_pairs(values: list[str], option: str) -> dict[str, str]:
    """``["a=b", ...]`` -> ``{"a": "b"}`` with a clear error naming the bad value."""
    pairs = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip():
            raise InputError(f"{option} {value!r}: expected WORD=SOURCE, e.g. {option} guitar=other")
        pairs[key.strip()] = target.strip()
    return pairs


def load_model(spec: str, *, offline: bool = False, config: str | None = None,
               model_type: str | None = None) -> LoadedModel:
    """Resolve ``--model`` (name, file or URL; with ``--config`` and ``--model-type`` an MSST model's weights),
    with a download bar when it must be fetched.

    ``UGOSA_OFFLINE`` is checked here for every command that loads a model, even one that needs no network.
    """
    offline = hub.offline_mode(offline)
    with Reporter(transfer=True) as reporter:
        task: int | None = None

        def progress(done: int, total: int | None) -> None:
            nonlocal task
            if task is None:
                task = reporter.add(f"downloading {spec.rsplit('/', 1)[-1]}", total)
            reporter.update(task, done, total)

        return hub.resolve_model(spec, offline=offline, progress=progress, on_warning=warn, config=config,
                                 model_type=model_type)

"""What every command shares: the streams, shared options, and progress reporting.

stdout carries results only (paths, or JSON with ``--json``); stderr carries progress, logs, warnings
and errors. Rich bars are drawn only when stderr is a terminal; otherwise progress becomes a plain line
every few seconds. ``--quiet`` silences all but warnings and errors; ``NO_COLOR`` is respected.
"""

from __future__ import annotations

import json
import os
import re
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


@dataclass
class OutputState:
    quiet: bool = False
    debug: bool = False


STATE = OutputState()
_stderr_console: Console | None = None
# What a terminal could take as a command, or that reorders the text it shows: C0 controls (tab and newline
# included), DEL, C1 controls, and the Unicode bidirectional embeddings, overrides and isolates.
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control character and bidi override shown as an escape (``\\x1b``, ``\\u202e``).

    Every line ugosa prints to a terminal goes through here, so names and text read from files (labels, file
    names, model names) cannot move the cursor, clear the screen, retitle the window or reorder the line.
    ``keep``: characters left as they are (the tabs of a result line's own columns).
    """
    return _UNSAFE_TEXT.sub(lambda m: m.group() if m.group() in keep else _escape_char(m), text)


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


def emit_json(value: Any) -> None:
    """A result as one JSON document on one line of stdout.

    JSON escapes C0 controls itself; DEL, C1 controls and bidi overrides are written as ``\\uXXXX`` too,
    which is the same JSON value.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(_UNSAFE_TEXT.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")
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
            columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
            if transfer:
                columns += [DownloadColumn(), TransferSpeedColumn()]
            else:
                columns += [TaskProgressColumn(), MofNCompleteColumn()]
            columns += [TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn()]
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

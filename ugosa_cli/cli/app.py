"""The root Typer app, the subcommands it gathers, and the process entry point with its exit codes."""

from __future__ import annotations

import os
import re
import signal
import sys
import warnings
from typing import Annotated, Optional

import typer

from ugosa_cli import __version__
from ugosa_cli.cli import common
from ugosa_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, UgosaError
from ugosa_cli.fsutil import path_error

app = typer.Typer(
    name="ugosa",
    help=(
        "Separate music into stems, and adapt the separator to your song from where each instrument plays.\n\n"
        "Results go to stdout (paths, or JSON with --json); progress and messages go to stderr.\n\n"
        "Exit codes: 0 ok, 1 failure at run time, 2 bad usage or bad input, 130 interrupted.\n\n"
        "Documentation: README.md and the docs/ folder of the source distribution (adapting, labels, models and "
        "the cache, scripting, evaluation, troubleshooting by error message); `ugosa COMMAND --help` for each "
        "command."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        common.emit(f"ugosa {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Separate music into stems, and adapt the separator to your song."""


def _register() -> None:
    from ugosa_cli.cli import (
        adapt_cmd,
        bench_cmd,
        demo_cmd,
        draft_cmd,
        eval_cmd,
        filter_cmd,
        labels_cmd,
        model_cmd,
        separate_cmd,
    )

    app.command("separate", no_args_is_help=True)(separate_cmd.separate)
    app.command("adapt", no_args_is_help=True)(adapt_cmd.adapt)
    app.command("filter", no_args_is_help=True)(filter_cmd.filter_command)
    app.command("strategies")(adapt_cmd.strategies)
    app.command("eval", no_args_is_help=True)(eval_cmd.evaluate)
    app.command("bench", no_args_is_help=True)(bench_cmd.bench)
    app.command("demo")(demo_cmd.demo)
    app.add_typer(model_cmd.app, name="model")
    labels_cmd.app.command("draft", no_args_is_help=True)(draft_cmd.draft)
    app.add_typer(labels_cmd.app, name="labels")


_register()


def _debug_requested(argv: list[str]) -> bool:
    if os.environ.get("UGOSA_DEBUG", "") not in ("", "0"):
        return True
    head = argv[: argv.index("--")] if "--" in argv else argv
    return "--debug" in head


def main(argv: list[str] | None = None) -> None:
    """Run the app; map every outcome to one line on stderr and a documented exit code.

    Typer itself reports usage errors (exit 2) and turns Ctrl-C (and here SIGTERM and SIGHUP) into exit 130,
    announced as ``ugosa: interrupted``; errors raised by the library arrive as :class:`UgosaError` and
    are printed as one line, without a traceback unless ``--debug`` (or ``UGOSA_DEBUG=1``) is given.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    common.STATE.debug = _debug_requested(args)
    previous = {signum: signal.signal(signum, _interrupt) for signum in _STOP_SIGNALS}
    shown = warnings.showwarning
    if not common.STATE.debug:
        warnings.showwarning = _show_warning
    try:
        app(args=args, prog_name="ugosa")
    except UgosaError as exc:
        if common.STATE.debug:
            raise
        common.error(exc.message)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        common.stderr().print("ugosa: interrupted", markup=False, highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit as exc:  # Typer turns Ctrl-C inside a command into a silent exit 130
        if exc.code == EXIT_INTERRUPTED:
            common.stderr().print("ugosa: interrupted", markup=False, highlight=False)
        raise
    except Exception as exc:
        if common.STATE.debug:
            raise
        refused = path_error(exc)  # a path the operating system refuses, wherever it was met
        if refused is not None:
            common.error(refused.message)
            sys.exit(refused.exit_code)
        common.error(f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)")
        sys.exit(EXIT_FAILURE)
    finally:
        warnings.showwarning = shown
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """A Python warning from a library ugosa uses, as ugosa's own one line (without the library's file and line,
    which --debug shows)."""
    text = re.sub(r"\s*\(Triggered internally at [^)]*\)", "", str(message)).strip()
    common.warn(text.splitlines()[0] if text else category.__name__)


# Signals that stop ugosa like Ctrl-C: SIGTERM (a scheduler's time limit, ``kill``) and SIGHUP (the terminal or
# the SSH session went away).
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP stop like Ctrl-C: partial files are removed, exit 130."""
    raise KeyboardInterrupt

"""The ``ugosa`` command line: a thin Typer layer over the library in :mod:`ugosa_cli`.

:func:`main` is the process entry point. It loads the command line (Typer, PyTorch, ...) only once it runs,
so Ctrl-C while those load ends the process quietly, as it does once a command runs.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

from ugosa_cli.errors import EXIT_INTERRUPTED


def _load() -> ModuleType:
    module = importlib.import_module("ugosa_cli.cli.app")
    globals()["app"] = module.app  # the Typer app (importing the module named ``app`` set the module here)
    return module


def main(argv: list[str] | None = None) -> None:
    """Load the command line, then run it (:func:`ugosa_cli.cli.app.main`); Ctrl-C while it loads is exit 130
    with ``ugosa: interrupted``, no traceback."""
    try:
        module = _load()
    except KeyboardInterrupt:
        sys.stderr.write("ugosa: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    module.main(argv)


def __getattr__(name: str) -> Any:
    """``app``: the Typer app, loaded when first asked for."""
    if name == "app":
        return _load().app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]

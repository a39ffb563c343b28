"""The ``ugosa`` command line: a thin Typer layer over the library in :mod:`ugosa_cli`."""

from ugosa_cli.cli.app import app, main

__all__ = ["app", "main"]

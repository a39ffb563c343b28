"""Entry point for ``python -m ugosa_cli``."""

from ugosa_cli.cli import main

main()

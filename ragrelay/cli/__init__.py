"""The ``ragrelay`` command line: the one composition root allowed to reach every package."""

from ragrelay.cli.app import cli, main

__all__ = ["cli", "main"]

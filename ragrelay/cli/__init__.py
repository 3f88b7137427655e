"""The ``ragrelay`` command line: the one composition root allowed to reach every package."""

from ragrelay.cli.greenlets import patch_if_gevent

patch_if_gevent()  # before the command line's modules import socket, ssl, threading users

from ragrelay.cli.app import cli, main  # noqa: E402

__all__ = ["cli", "main"]

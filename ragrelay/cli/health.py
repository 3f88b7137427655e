"""`ragrelay healthcheck`: click and the standard library only, so a probe starts fast."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


@click.command()
@click.option(
    "--heartbeat",
    "path",
    type=click.Path(path_type=Path),
    required=True,
    help="The heartbeat file a worker touches.",
)
@click.option("--max-age", type=float, default=30.0, show_default=True)
def healthcheck(path: Path, max_age: float) -> None:
    """Exit 0 if the heartbeat file was touched within --max-age seconds, else 1."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        click.echo(f"unhealthy: {path} does not exist", err=True)
        sys.exit(1)
    if age > max_age:
        click.echo(f"unhealthy: heartbeat {age:.0f} s old (max {max_age:g})", err=True)
        sys.exit(1)
    click.echo(f"healthy: heartbeat {age:.1f} s old")

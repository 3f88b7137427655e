"""`ragrelay up`'s children: one log file each, one line each on the terminal.

Each process (the orchestrator and every worker) writes its whole output, Celery's banner
and warnings included, to ``<log dir>/<name>.log`` (default ``<RAGRELAY_DATA_DIR>/logs``);
the terminal gets one line per process when it is ready (Celery's ``ready.`` in its log,
or, when the log level hides that line, its first heartbeat in Redis), and one line when
a process exits, with the tail of its log.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import click

from bus.keys import Keys
from bus.settings import Settings

READY_MARK = b" ready."


@dataclass
class Child:
    name: str  # orchestrator, analysis-1, ...
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    ready: bool = False
    reported_exit: bool = False
    _out: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ragrelay", *self.args],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def close(self) -> None:
        if self._out is not None:
            self._out.close()

    def tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def children(counts: dict[str, int], log_dir: Path) -> list[Child]:
    out = [Child("orchestrator", ["orchestrator"], log_dir / "orchestrator.log")]
    for stage, n in counts.items():
        for i in range(1, n + 1):
            name = stage if n == 1 else f"{stage}-{i}"
            out.append(Child(name, ["worker", stage], log_dir / f"{name}.log"))
    return out


def _heartbeat_seen(client: object, settings: Settings, child: Child) -> bool:
    kind = child.args[-1] if child.args[0] == "worker" else "orchestrator"
    assert child.proc is not None
    key = Keys(settings.key_prefix).heartbeat(f"{kind}:{socket.gethostname()}-{child.proc.pid}")
    return bool(client.exists(key))  # type: ignore[attr-defined]


def report(kids: list[Child], settings: Settings, client: object | None) -> None:
    """Print the line of each process that became ready or exited since the last call."""
    quiet_ready = settings.log_level not in ("DEBUG", "INFO")  # Celery's "ready." hidden
    width = max(len(k.name) for k in kids)
    for kid in kids:
        assert kid.proc is not None
        if kid.proc.poll() is not None and not kid.reported_exit:
            kid.reported_exit = True
            click.echo(
                f"  {kid.name:<{width}}  pid {kid.proc.pid}  exited with code "
                f"{kid.proc.returncode}; log {kid.log}\n{kid.tail()}",
                err=True,
            )
            continue
        if kid.ready or kid.reported_exit:
            continue
        try:
            seen = READY_MARK in kid.log.read_bytes()
        except OSError:
            seen = False
        if not seen and quiet_ready and client is not None:
            seen = _heartbeat_seen(client, settings, kid)
        if seen:
            kid.ready = True
            click.echo(
                f"  {kid.name:<{width}}  pid {kid.proc.pid}  ready   log {kid.log}", err=True
            )


def wait_ready(kids: list[Child], settings: Settings, client: object | None) -> None:
    """Until every process is ready or one has exited (then ``up`` stops)."""
    while not all(k.ready for k in kids):
        report(kids, settings, client)
        if any(k.reported_exit for k in kids):
            return
        time.sleep(0.3)
    click.echo(
        f"ragrelay up: all {len(kids)} processes ready; logs in {kids[0].log.parent}; "
        "Ctrl-C stops them",
        err=True,
    )


__all__ = ["Child", "children", "report", "wait_ready"]

"""A private SpamAssassin ``spamd`` on a free loopback port (for ``eval inbox --spamd auto``
and the integration test). Local rules only (``--local``: no network tests), no user
configs, its own helper home; stopped (by its own pid) when the context ends."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bus.errors import ConfigError
from ragrelay.inbox.spamfilter import SpamdClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spamd_binary() -> str | None:
    return shutil.which("spamd") or (
        "/usr/sbin/spamd" if Path("/usr/sbin/spamd").exists() else None
    )


@contextlib.contextmanager
def running_spamd(children: int = 2, start_timeout_s: float = 180.0) -> Iterator[str]:
    """Start ``spamd`` on 127.0.0.1:<free port>; yields ``host:port``."""
    binary = spamd_binary()
    if binary is None:
        raise ConfigError(
            "spamd is not installed (Debian: apt-get install spamd spamassassin; "
            "scripts/ensure-system-deps.sh does it)"
        )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ragrelay-spamd-") as home:
        os.chmod(home, 0o777)  # spamd drops to nobody when started as root
        log = Path(home) / "spamd.log"
        command = [
            binary,
            f"--listen=127.0.0.1:{port}",
            f"--max-children={children}",
            f"--min-children={children}",
            "--local",
            "--nouser-config",
            f"--helper-home-dir={home}",
            f"--pidfile={home}/spamd.pid",
            f"--syslog={log}",
        ]
        if os.geteuid() == 0:
            command.append("--username=nobody")
        with open(os.devnull, "wb") as devnull:
            process = subprocess.Popen(command, stdout=devnull, stderr=subprocess.STDOUT)
        try:
            client = SpamdClient("127.0.0.1", port, timeout_s=5.0)
            deadline = time.monotonic() + start_timeout_s
            while not client.ping():
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-800:] if log.exists() else ""
                    raise ConfigError(f"spamd exited with {process.returncode}: {tail}")
                if time.monotonic() > deadline:
                    raise ConfigError(f"spamd did not answer PING within {start_timeout_s} s")
                time.sleep(0.5)
            yield f"127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


__all__ = ["free_port", "running_spamd", "spamd_binary"]

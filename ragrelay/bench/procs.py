"""Processes a benchmark run owns: a private redis-server, worker fleets, an RSS sampler."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import redis

from bus.errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A throwaway ``redis-server`` on a free loopback port (nothing kept on disk)."""

    def __init__(self, workdir: Path, *, appendonly: bool = False, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.appendonly = appendonly  # every write fsynced to an AOF in workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ConfigError(
                "redis-server is not installed: install it, or set "
                "RAGRELAY_REDIS_URL to an idle Redis for the benchmark"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
                *(
                    ["--appendonly", "yes", "--appendfsync", "always"]
                    if self.appendonly
                    else ["--appendonly", "no"]
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        try:
            for _ in range(400):
                with contextlib.suppress(redis.exceptions.ConnectionError):
                    client.ping()
                    return self
                time.sleep(0.025)
        finally:
            client.close()
        self.stop()
        raise ConfigError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def stop_process(proc: subprocess.Popen[Any] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s; nothing when it has already exited."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class Member:
    kind: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Fleet:
    """Processes started for one measurement, each in its own session, logs to files."""

    env: Mapping[str, str]
    logdir: Path
    members: list[Member] = field(default_factory=list)
    _files: list[IO[bytes]] = field(default_factory=list)

    def start(self, kind: str, args: Sequence[str]) -> Member:
        self.logdir.mkdir(parents=True, exist_ok=True)
        path = self.logdir / f"{kind}-{len(self.members)}.log"
        out = path.open("ab")
        self._files.append(out)
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=dict(self.env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        member = Member(kind, proc, path)
        self.members.append(member)
        return member

    def check_alive(self) -> None:
        """Raise with the log tail of any member that exited."""
        for m in self.members:
            if m.proc.poll() is not None:
                tail = m.log.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"{m.kind} process exited with {m.proc.returncode}:\n{tail}")

    def stop(self, timeout_s: float = 15.0) -> None:
        for m in self.members:
            if m.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(m.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for m in self.members:
            try:
                m.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(m.proc.pid, signal.SIGKILL)
                m.proc.wait(timeout=5)
        self.members.clear()
        for f in self._files:
            f.close()
        self._files.clear()


class RssSampler:
    """Peak resident memory per process, grouped by kind, sampled in a background thread.

    A prefork worker's pool children count as separate processes of the same kind: the
    figure is the largest single process, which is what a container's limit must fit.
    """

    def __init__(self, fleet: Fleet, interval_s: float = 0.25) -> None:
        self.fleet = fleet
        self.interval_s = interval_s
        self.peaks: dict[str, int] = {}
        self.cpu_s: dict[int, tuple[str, float]] = {}  # pid -> (kind, user+system seconds)
        self.processes: dict[str, set[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-rss")

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        for m in list(self.fleet.members):
            try:
                root = psutil.Process(m.proc.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    times = p.cpu_times()
                except psutil.Error:
                    continue
                self.cpu_s[p.pid] = (m.kind, times.user + times.system)
                self.processes.setdefault(m.kind, set()).add(p.pid)
                self.peaks[m.kind] = max(self.peaks.get(m.kind, 0), rss)

    def report(self) -> dict[str, Any]:
        return {kind: round(rss / 2**20, 1) for kind, rss in sorted(self.peaks.items())}

    def cpu_by_kind(self) -> dict[str, float]:
        """CPU seconds (user + system) each kind used since its processes started."""
        out: dict[str, float] = {}
        for kind, seconds in self.cpu_s.values():
            out[kind] = out.get(kind, 0.0) + seconds
        return out

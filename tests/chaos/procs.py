"""Process control for chaos scenarios: start, kill, restart and measure cluster processes."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis

from tests.support.cluster import Cluster

WORKER_STAGES = ("analysis", "retrieval", "generation", "evaluation")
_seq = itertools.count(1)


class ChaosCluster(Cluster):
    """A Cluster whose processes can be restarted under fresh names and per-process env."""

    def __init__(self, env: Mapping[str, str], logdir: Path) -> None:
        super().__init__(env, logdir)
        self.kills = 0
        self.by_role: dict[str, str] = {}  # role (e.g. "generation") -> current process name

    def spawn(
        self,
        role: str,
        *args: str,
        module: str = "ragrelay",
        env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> str:
        """Start ``python -m module *args`` as a new process for ``role``; wait until ready."""
        name = f"{role}-{next(_seq)}"
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=dict(env or self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        self.by_role[role] = name
        if wait:
            self.wait_ready()
        return name

    def worker(
        self,
        stage: str,
        *,
        concurrency: int | None = 2,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> str:
        """A ``ragrelay worker STAGE`` process (``concurrency=None``: the CLI's default pool)."""
        extra = ("--concurrency", str(concurrency)) if concurrency else ()
        return self.spawn(stage, "worker", stage, *extra, env=env, wait=wait)

    def orchestrator(
        self,
        *,
        env: Mapping[str, str] | None = None,
        dispatch: str | None = None,
        wait: bool = True,
    ) -> str:
        if dispatch is None:
            return self.spawn("orchestrator", "orchestrator", env=env, wait=wait)
        return self.spawn(
            "orchestrator", dispatch, module="tests.chaos.orchestrator_proc", env=env, wait=wait
        )

    def up(
        self,
        stages: tuple[str, ...] = WORKER_STAGES,
        *,
        concurrency: int | None = 2,
        dispatch: str | None = None,
    ) -> ChaosCluster:
        """The orchestrator and one worker per stage, started together."""
        self.orchestrator(dispatch=dispatch, wait=False)
        for stage in stages:
            self.worker(stage, concurrency=concurrency, wait=False)
        self.wait_ready(timeout=60)
        return self

    def signal_role(
        self, role: str, sig: int = signal.SIGKILL, *, group: bool = True, wait_s: float = 60.0
    ) -> float:
        """Signal the process of ``role`` (its whole group for SIGKILL); wait for it to exit.

        Returns the seconds it took to exit."""
        name = self.by_role[role]
        proc = self.procs.pop(name)
        started = time.monotonic()
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        proc.wait(timeout=wait_s)
        if group and sig != signal.SIGKILL:
            _reap_group(proc.pid)
        self.kills += 1
        return time.monotonic() - started

    def wait_exit(self, role: str, timeout_s: float) -> int:
        """Wait for a process that is expected to die by itself (returns its exit code)."""
        name = self.by_role[role]
        proc = self.procs.pop(name)
        code = proc.wait(timeout=timeout_s)
        _reap_group(proc.pid)
        return code

    def pids(self) -> dict[str, list[int]]:
        """Each live process and its children (prefork pool processes)."""
        out: dict[str, list[int]] = {}
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            try:
                p = psutil.Process(proc.pid)
                out[name] = [proc.pid, *(c.pid for c in p.children(recursive=True))]
            except psutil.NoSuchProcess:
                continue
        return out

    def log(self, role_or_name: str) -> str:
        name = self.by_role.get(role_or_name, role_or_name)
        return (self.logdir / f"{name}.log").read_text(errors="replace")

    def all_logs(self, prefix: str) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.logdir.glob(f"{prefix}-*.log"))
        )


def _reap_group(pgid: int) -> None:
    """Kill what is left of a process group (prefork children of a dead main process)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass
class RssSampler:
    """Samples the resident memory of every cluster process (children summed in) and queue depth."""

    cluster: ChaosCluster
    client: redis.Redis
    queues: tuple[str, ...] = WORKER_STAGES
    interval_s: float = 0.5
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    peak_depth: dict[str, int] = field(default_factory=dict)
    depth_series: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def sample(self) -> None:
        for name, pids in self.cluster.pids().items():
            total = 0
            for pid in pids:
                try:
                    total += psutil.Process(pid).memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            mb = total / 2**20
            self.peak_rss_mb[name] = round(max(self.peak_rss_mb.get(name, 0.0), mb), 1)
        pipe = self.client.pipeline(transaction=False)
        for q in self.queues:
            pipe.llen(q)
        depths = [int(d) for d in pipe.execute()]
        for q, d in zip(self.queues, depths, strict=True):
            self.peak_depth[q] = max(self.peak_depth.get(q, 0), d)
        self.depth_series.append((time.monotonic(), sum(depths)))

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(redis.exceptions.ConnectionError, psutil.Error):
                self.sample()
            self._stop.wait(self.interval_s)


MakeCluster = Callable[[Mapping[str, str]], ChaosCluster]

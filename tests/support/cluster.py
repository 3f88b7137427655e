"""Real worker processes (`ragrelay worker STAGE`, `ragrelay orchestrator`) for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STAGES = ("analysis", "retrieval", "generation", "evaluation", "ingest")


class Cluster:
    def __init__(self, env: Mapping[str, str], logdir: Path) -> None:
        self.env = dict(env)
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.logdir.mkdir(parents=True, exist_ok=True)
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ragrelay", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_all(self, stages: tuple[str, ...] = STAGES) -> Cluster:
        self.start("orchestrator", "orchestrator")
        for stage in stages:
            self.start(stage, "worker", stage, "--concurrency", "2")
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready when every process logged that Celery is ready to consume."""
        deadline = time.monotonic() + timeout
        pending = set(self.procs)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                proc = self.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}: "
                        + (self.logdir / f"{name}.log").read_text()[-2000:]
                    )
                if b"ready." in (self.logdir / f"{name}.log").read_bytes():
                    pending.discard(name)
            time.sleep(0.1)
        if pending:
            raise RuntimeError(f"not ready after {timeout} s: {sorted(pending)}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()


REPO = Path(__file__).resolve().parents[2]
SAMPLE_CORPUS = REPO / "ragrelay" / "sample" / "corpus.jsonl"


def sample_corpus_env(data_dir: Path, tenant: str, **extra: str) -> dict[str, str]:
    """A subprocess environment for the CLI: none of the caller's ``RAGRELAY_*`` settings,
    ``extra`` set, and ``data_dir`` holding the sample corpus ingested for ``tenant``
    (embedded ingest, no broker needed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env.update(PYTHONPATH=str(REPO), RAGRELAY_DATA_DIR=str(data_dir), **extra)
    out = subprocess.run(
        [sys.executable, "-m", "ragrelay", "ingest", str(SAMPLE_CORPUS), "--tenant", tenant],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return env

"""One benchmark invocation: its Redis (private or given), scratch dir, ids and child env."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ragrelay.bench.procs import PrivateRedis


@dataclass(frozen=True)
class BenchRun:
    redis_url: str
    redis_kind: str  # "private" or "given"
    workdir: Path
    run_id: str
    parent_env: Mapping[str, str]

    @property
    def key_prefix(self) -> str:
        return f"bench-{self.run_id}"

    def child_env(self, **extra: str) -> dict[str, str]:
        env = dict(self.parent_env)
        env.update(
            {
                "RAGRELAY_REDIS_URL": self.redis_url,
                "RAGRELAY_KEY_PREFIX": self.key_prefix,
                "RAGRELAY_LOG_LEVEL": "WARNING",  # per-task INFO lines would be measured too
                "RAGRELAY_DATA_DIR": str(self.workdir / "data"),
                "PYTHONUNBUFFERED": "1",
                # children import this same source tree, wherever the bench was started from
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(project_root()), self.parent_env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        env.pop("RAGRELAY_FAULTS", None)
        env.update(extra)
        return env

    def logdir(self, name: str) -> Path:
        return self.workdir / "logs" / name


@contextlib.contextmanager
def bench_run(
    redis_url: str | None, parent_env: Mapping[str, str], keep_dir: Path | None = None
) -> Iterator[BenchRun]:
    """Start a private redis-server unless ``redis_url`` is given; clean up afterwards."""
    if keep_dir is not None:
        keep_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ragrelay-bench-", dir=keep_dir))
    server: PrivateRedis | None = None
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so the cleanup below runs
    try:
        if redis_url is None:
            server = PrivateRedis(workdir / "redis").start()
        yield BenchRun(
            redis_url=redis_url or (server.url if server else ""),
            redis_kind="given" if redis_url else "private",
            workdir=workdir,
            run_id=uuid.uuid4().hex[:8],
            parent_env=parent_env,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if server is not None:
            server.stop()
        if keep_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpus": psutil.cpu_count(logical=True),
        "python": platform.python_version(),
        "load_1m": round(load[0], 2),
    }


def project_root() -> Path:
    """The checkout this package runs from (where ``tests/fakes`` lives, if it is there)."""
    return Path(__file__).resolve().parents[2]

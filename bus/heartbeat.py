"""Heartbeats: a file touched by a daemon thread (liveness without `celery inspect ping`),
and, with Redis, a key with a TTL that the gateway's /readyz reads."""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import redis


class Heartbeat:
    def __init__(
        self,
        path: Path | None,
        interval_s: float,
        *,
        redis_client: Any = None,
        redis_key: str | None = None,
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self.redis_client = redis_client
        self.redis_key = redis_key
        self._stop = threading.Event()
        self._pid = os.getpid()

    def beat(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        if self.redis_client is not None and self.redis_key:
            # Redis down: the file still says the process is alive
            with contextlib.suppress(redis.exceptions.RedisError):
                self.redis_client.set(
                    self.redis_key, repr(time.time()), ex=max(2, int(3 * self.interval_s))
                )

    def start(self) -> None:
        self.beat()
        threading.Thread(target=self._run, daemon=True, name="ragrelay-heartbeat").start()
        atexit.register(self.stop)  # a process that stops says so at once (its key goes)

    def stop(self) -> None:
        self._stop.set()
        # only the process that started it: a forked pool child inherits atexit handlers
        if self.redis_client is not None and self.redis_key and os.getpid() == self._pid:
            with contextlib.suppress(redis.exceptions.RedisError):
                self.redis_client.delete(self.redis_key)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()


def live_kinds(client: Any, prefix_key: str, max_age_s: float) -> dict[str, float]:
    """Youngest heartbeat age per process kind among the keys ``<prefix_key><kind>:<id>``
    (``Keys.heartbeat("")`` is the prefix) written within ``max_age_s``."""
    ages: dict[str, float] = {}
    now = time.time()
    for key in client.scan_iter(match=f"{prefix_key}*", count=500):
        name = key.decode() if isinstance(key, bytes) else str(key)
        kind = name[len(prefix_key) :].split(":", 1)[0]
        raw = client.get(name)
        try:
            age = max(0.0, now - float(raw)) if raw is not None else None
        except ValueError:
            age = None
        if age is not None and age <= max_age_s and (kind not in ages or age < ages[kind]):
            ages[kind] = age
    return ages

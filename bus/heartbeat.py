"""Heartbeats: a file touched by a daemon thread (liveness without `celery inspect ping`),
and, with Redis, a key with a TTL that the gateway's /readyz reads."""

from __future__ import annotations

import contextlib
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

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()

"""Heartbeats: a file touched by a daemon thread (liveness without `celery inspect ping`),
and, with Redis, a key with a TTL that the gateway's /readyz reads, plus a field of one
registry hash (``Keys.heartbeats()``) that the CLI reads in one round trip however large
the keyspace is (``ragrelay/liveness.py``). A process that exits removes both."""

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
        registry_key: str | None = None,
    ) -> None:
        self.path = path
        self.interval_s = interval_s
        self.redis_client = redis_client
        self.redis_key = redis_key
        self.registry_key = registry_key
        self._stop = threading.Event()
        self._pid = os.getpid()

    def beat(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        if self.redis_client is not None and self.redis_key:
            # Redis down: the file still says the process is alive
            with contextlib.suppress(redis.exceptions.RedisError):
                now = repr(time.time())
                pipe = self.redis_client.pipeline(transaction=False)
                pipe.set(self.redis_key, now, ex=max(2, int(3 * self.interval_s)))
                if self.registry_key:
                    pipe.hset(self.registry_key, self.redis_key, now)
                    # nothing beating for an hour: the registry goes too (no key lives forever)
                    pipe.expire(self.registry_key, int(FORGET_AFTER_S))
                pipe.execute()

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
                if self.registry_key:
                    self.redis_client.hdel(self.registry_key, self.redis_key)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()


#: A registry field older than this is a process that died without saying so: pruned.
FORGET_AFTER_S = 3600.0


def live_kinds(
    client: Any, registry_key: str, prefix_key: str, max_age_s: float
) -> dict[str, float]:
    """Youngest heartbeat age per process kind, among the registry's fields
    ``<prefix_key><kind>:<id>`` (``Keys.heartbeat("")`` is the prefix) beaten within
    ``max_age_s``. Fields of processes gone for :data:`FORGET_AFTER_S` are removed."""
    ages: dict[str, float] = {}
    now = time.time()
    stale: list[Any] = []
    for field, raw in client.hgetall(registry_key).items():
        name = field.decode() if isinstance(field, bytes) else str(field)
        if not name.startswith(prefix_key):
            continue
        kind = name[len(prefix_key) :].split(":", 1)[0]
        try:
            age = max(0.0, now - float(raw))
        except ValueError:
            stale.append(field)
            continue
        if age > FORGET_AFTER_S:
            stale.append(field)
        elif age <= max_age_s and (kind not in ages or age < ages[kind]):
            ages[kind] = age
    if stale:
        client.hdel(registry_key, *stale)
    return ages

"""What `ragrelay ingest` on Redis tells its user while it waits (issue 22, item 3).

- Nothing consumes the ``ingest`` queue (no ingest worker's heartbeat, see
  ``ragrelay/liveness.py``): one line on stderr within :data:`GRACE_S` seconds saying so and
  how to start one; the command keeps waiting (a worker started now picks the batches up).
- Ctrl-C: the batches this run queued that no worker has taken yet are removed from the
  queue (nothing is left for a worker to do later behind the user's back); batches a
  worker already took finish and are recorded, so running the same command again resumes
  with only the missing ones.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from bus.settings import Settings
from ragrelay.liveness import GRACE_S, how_to_start, not_alive

QUEUE = "ingest"
CHECK_EVERY_S = 1.0


class IngestWatch:
    """Polled from the wait loop: warns once per stretch of time with no ingest worker."""

    def __init__(self, redis: Any, settings: Settings, say: Callable[[str], None]) -> None:
        self.redis = redis
        self.settings = settings
        self.say = say
        self.started = time.monotonic()
        self._next = self.started
        self._warned = False

    def poll(self, batches_done: int) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + CHECK_EVERY_S
        alive = not not_alive(self.redis, self.settings, [QUEUE])
        if alive:
            if self._warned:
                self.say("an ingest worker is alive now; continuing")
            self._warned = False
        elif not self._warned and now - self.started >= min(GRACE_S, 5.0):
            self._warned = True
            self.say(
                f"waiting: no ingest worker is alive (no heartbeat in Redis), so nothing "
                f"consumes the `{QUEUE}` queue ({batches_done} batches done): "
                f"{how_to_start([QUEUE])}. Ctrl-C cancels the queued batches; running "
                "the same command again resumes."
            )


def cancel_queued(redis: Any, task_ids: Iterable[str], queue: str = QUEUE) -> int:
    """Remove from ``queue`` the messages of ``task_ids`` that no worker has taken yet."""
    ids = set(task_ids)
    removed = 0
    for raw in redis.lrange(queue, 0, -1):
        try:
            task_id = json.loads(raw).get("headers", {}).get("id")
        except (ValueError, AttributeError):
            continue
        if task_id in ids:
            removed += int(redis.lrem(queue, 1, raw))
    return removed

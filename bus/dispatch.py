"""How the orchestrator sends work: Celery ``send_task`` on Redis, or an in-process queue."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from celery import Celery

from bus import logging as blog
from bus.keys import task_name

log = blog.get_logger("ragrelay.dispatch")


class Dispatcher(Protocol):
    """Sends stage tasks by name. ``batch()`` groups the sends inside it into one round trip
    where the transport can (a no-op where it cannot)."""

    def send(
        self, stage: str, payload: dict[str, Any], *, task_id: str, headers: dict[str, Any]
    ) -> None: ...

    def batch(self) -> AbstractContextManager[None]: ...


class CeleryDispatcher:
    """Publishes ``ragrelay.<stage>`` to the stage's queue. Tasks are addressed by name."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._producer: Any = None

    def send(
        self, stage: str, payload: dict[str, Any], *, task_id: str, headers: dict[str, Any]
    ) -> None:
        self.app.send_task(
            task_name(stage),
            args=[payload],
            queue=stage,
            task_id=task_id,
            headers=headers,
            producer=self._producer,
            # what monitoring shows instead of a repr of the payload: cheaper, and no
            # query text or documents copied into message headers
            argsrepr=f"({stage} {task_id})",
            kwargsrepr="{}",
        )

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Publish every ``send`` inside in one pipelined round trip (kombu's batch)."""
        if self._producer is not None:
            yield
            return
        with self.app.producer_or_acquire() as producer, producer.batch():
            self._producer = producer
            try:
                yield
            finally:
                self._producer = None


class LocalDispatcher:
    """The embedded mode's transport: a FIFO run in this process through the same task code."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.queue: collections.deque[tuple[str, dict[str, Any], str, dict[str, Any]]] = (
            collections.deque()
        )

    def send(
        self, stage: str, payload: dict[str, Any], *, task_id: str, headers: dict[str, Any]
    ) -> None:
        self.queue.append((stage, payload, task_id, headers))

    def batch(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # appending to a deque is already one step

    def drain(self, limit: int = 1_000) -> int:
        """Run queued tasks (and what they enqueue) in order; returns how many ran."""
        ran = 0
        while self.queue and ran < limit:
            stage, payload, task_id, headers = self.queue.popleft()
            task = self.app.tasks[task_name(stage)]
            task.apply(args=[payload], task_id=task_id, headers=headers)
            ran += 1
        return ran

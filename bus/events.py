"""Appending events to the orchestrator's stream, and dead letters to their store."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import redis

from bus.keys import Keys
from schemas import JobEvent


class EventLog:
    """The job events stream (read by the orchestrator's consumer group) and the DLQ."""

    def __init__(self, client: redis.Redis, keys: Keys, *, maxlen: int = 1_000_000) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen

    def emit(self, event: JobEvent) -> str:
        entry = self.client.xadd(
            self.keys.events,
            {"event": event.to_json()},
            maxlen=self.maxlen,
            approximate=True,
        )
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def emit_result(self, event: JobEvent, step_id: str, ttl_s: int) -> None:
        """Append a step's result event and mark the step done, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(
            self.keys.events, {"event": event.to_json()}, maxlen=self.maxlen, approximate=True
        )
        pipe.set(self.keys.step_done(step_id), b"1", nx=True, ex=ttl_s)
        pipe.execute()

    def is_done(self, step_id: str) -> bool:
        return bool(self.client.exists(self.keys.step_done(step_id)))


class DeadLetters:
    """Dead letters: payload + reason, listable, replayable, purgeable (a Redis Stream)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def put(
        self,
        *,
        task: str,
        queue: str,
        payload: Any,
        reason: str,
        kind: str,
        job_id: str | None = None,
        task_id: str | None = None,
    ) -> str:
        fields = {
            "task": task,
            "queue": queue,
            "payload": json.dumps(payload, default=str),
            "reason": reason,
            "kind": kind,
            "job_id": job_id or "",
            "task_id": task_id or "",
            "at": repr(time.time()),
        }
        entry = self.client.xadd(self.keys.dlq, fields)  # type: ignore[arg-type]
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def list(self, count: int = 100) -> list[dict[str, Any]]:
        rows: Any = self.client.xrange(self.keys.dlq, count=count)
        return [_decode(entry_id, fields) for entry_id, fields in rows]

    def get(self, entry_id: str) -> dict[str, Any] | None:
        rows: Any = self.client.xrange(self.keys.dlq, min=entry_id, max=entry_id)
        return _decode(*rows[0]) if rows else None

    def delete(self, entry_id: str) -> int:
        return int(self.client.xdel(self.keys.dlq, entry_id))

    def purge(self) -> int:
        n = int(self.client.xlen(self.keys.dlq))
        self.client.delete(self.keys.dlq)
        return n


def _decode(entry_id: Any, fields: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entry_id.decode() if isinstance(entry_id, bytes) else entry_id}
    for k, v in fields.items():
        key = k.decode() if isinstance(k, bytes) else k
        out[key] = v.decode() if isinstance(v, bytes) else v
    with contextlib.suppress(ValueError):
        out["payload"] = json.loads(out.get("payload", "null"))
    return out

"""Server-Sent Events of a job's trace, read from its Redis Stream as it grows.

Each trace entry is one event: ``id`` = the stream entry id (so ``Last-Event-ID`` resumes
right after it), ``event`` = the trace event type, ``data`` = the TraceEvent JSON. The
stream ends with one ``event: result`` carrying the JobResult JSON (no id: resuming after
the last trace entry sends the result again).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator
from typing import Any

import redis.asyncio as aioredis

from bus.keys import Keys

ENTRY_ID = re.compile(r"\d{1,20}-\d{1,20}")
FINISHED = "job.finished"


def format_event(data: str, *, event: str | None = None, event_id: str | None = None) -> bytes:
    """One SSE frame. ``data`` may hold newlines: each line becomes a ``data:`` line."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str) -> bytes:
    return f": {text}\n\n".encode()


def valid_entry_id(value: str) -> bool:
    return ENTRY_ID.fullmatch(value) is not None


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _event_type(raw: str) -> str:
    try:
        value = json.loads(raw)
    except ValueError:
        return "trace"
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else "trace"


async def trace_stream(
    client: aioredis.Redis,
    keys: Keys,
    job_id: str,
    *,
    after: str | None,
    block_ms: int,
    keepalive_s: float,
    max_s: float,
) -> AsyncGenerator[bytes, None]:
    """Yield the SSE frames of ``job_id`` after entry ``after``, then its result."""
    stream = keys.trace(job_id)
    last = after or "0-0"
    started = last_sent = time.monotonic()
    yield b"retry: 2000\n\n"
    while True:
        rows: Any = await client.xread({stream: last}, count=100, block=block_ms)
        finished = False
        for _key, entries in rows or []:
            for entry_id, fields in entries:
                last = _s(entry_id)
                raw = _s(fields.get(b"event", b"{}"))
                kind = _event_type(raw)
                yield format_event(raw, event=kind, event_id=last)
                last_sent = time.monotonic()
                finished = finished or kind == FINISHED
        if finished or not rows:
            result = await client.get(keys.result(job_id))
            if result is not None:
                yield format_event(_s(result), event="result")
                return
        now = time.monotonic()
        if now - started > max_s:
            yield format_event(
                '{"detail": "events stream closed after its time limit; '
                'reconnect with Last-Event-ID"}',
                event="timeout",
            )
            return
        if now - last_sent > keepalive_s:
            yield comment("keepalive")
            last_sent = now

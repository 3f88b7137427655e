"""A closed-loop load driver: keep N jobs in flight, time each from submit to completion.

Completion is read from Celery's result channel (``celery-task-meta-<id>``), which both the
raw chain's result backend and ragrelay's job commit publish to, through one pattern
subscription: both sides are timed by the same clock and the same listener.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

META_PREFIX = "celery-task-meta-"


@dataclass
class Outcome:
    submitted: int = 0
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    llm_calls: Counter[int] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    timed_out: bool = False


def describe(raw: bytes) -> tuple[str, int]:
    """(status, LLM calls): ``SUCCESS`` for a chain, the job's status and usage for a job."""
    try:
        meta: Any = json.loads(raw)
    except ValueError:
        return "unreadable", 0
    if not isinstance(meta, dict):
        return "unreadable", 0
    result = meta.get("result")
    if isinstance(result, dict) and "status" in result:
        usage = result.get("usage")
        calls = usage.get("llm_calls", 0) if isinstance(usage, dict) else 0
        return str(result["status"]), int(calls) if isinstance(calls, int) else 0
    return str(meta.get("status")), 0


class Completions:
    """One pattern subscription on ``celery-task-meta-<prefix>*`` in a background thread."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
        self.pubsub.psubscribe(f"{META_PREFIX}{prefix}*")
        self.callback: Callable[[str, bytes, float], None] | None = None
        self._stop = threading.Event()
        # wait for the subscription to be confirmed before anything is sent
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(ignore_subscribe_messages=False, timeout=0.1)
            if msg and msg.get("type") == "psubscribe":
                break
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-listener")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.pubsub.get_message(timeout=0.2)
            except (redis.exceptions.ConnectionError, ValueError):
                return
            if not msg or msg.get("type") != "pmessage":
                continue
            now = time.perf_counter()
            channel = msg["channel"]
            name = channel.decode() if isinstance(channel, bytes) else str(channel)
            data = msg["data"] if isinstance(msg["data"], bytes) else str(msg["data"]).encode()
            if self.callback is not None:
                self.callback(name[len(META_PREFIX) :], data, now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.pubsub.close()


def closed_loop(
    completions: Completions,
    submit: Callable[[str], None],
    ids: list[str],
    *,
    inflight: int,
    timeout_s: float,
    on_tick: Callable[[], None] | None = None,
) -> Outcome:
    """Submit ``ids`` keeping at most ``inflight`` unfinished; wait for all (or time out)."""
    out = Outcome()
    if not ids:
        return out
    slots = threading.Semaphore(inflight)
    started: dict[str, float] = {}
    finished: set[str] = set()
    lock = threading.Lock()
    all_done = threading.Event()
    last = [0.0]

    def on_done(task_id: str, data: bytes, now: float) -> None:
        with lock:
            t0 = started.get(task_id)
            if t0 is None or task_id in finished:
                return
            finished.add(task_id)
            out.latencies_s.append(now - t0)
            status, calls = describe(data)
            out.statuses[status] += 1
            out.llm_calls[calls] += 1
            last[0] = now
            if len(finished) == len(ids):
                all_done.set()
        slots.release()

    completions.callback = on_done
    begin = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    try:
        for task_id in ids:
            while not slots.acquire(timeout=0.5):
                if on_tick is not None:
                    on_tick()
                if time.monotonic() > deadline:
                    out.timed_out = True
                    break
            if out.timed_out:
                break
            with lock:
                started[task_id] = time.perf_counter()
            submit(task_id)
            out.submitted += 1
        while not out.timed_out and not all_done.wait(0.5):
            if on_tick is not None:
                on_tick()
            if time.monotonic() > deadline:
                out.timed_out = True
    finally:
        completions.callback = None
    out.elapsed_s = (last[0] or time.perf_counter()) - begin
    return out

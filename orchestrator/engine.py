"""The orchestrator's event loop: read events in batches, advance jobs, dispatch next steps.

Events come from one Redis Stream read by a consumer group, so several replicas can share
the work; each transition is a compare-and-set per job, idempotent per step id. Entries a
crashed replica left pending are reclaimed with ``XAUTOCLAIM``.

One bad record never holds up the others: an event that does not parse, a job whose state
cannot be loaded, a transition the machine cannot compute and a commit Redis refuses for
one job are each dead-lettered (the job quarantined) and acknowledged, and the rest of the
batch goes on (docs/reliability.md, "One bad job never blocks another").
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import redis
from pydantic import ValidationError

from bus import logging as blog
from bus import metrics
from bus.dispatch import Dispatcher
from bus.errors import CorruptRecord
from bus.events import DeadLetters
from bus.keys import ORCHESTRATOR_GROUP, Keys
from bus.tracecontext import traceparent_for
from orchestrator.jobs import JobStore
from orchestrator.machine import Dispatch, Finish, MachineConfig, Transition, advance
from orchestrator.state import JobState
from schemas import JobEvent, JobResult, TraceEvent

log = blog.get_logger("ragrelay.orchestrator")

MAX_CAS_RETRIES = 50


class Engine:
    def __init__(
        self,
        client: redis.Redis,
        jobs: JobStore,
        dispatcher: Dispatcher,
        *,
        keys: Keys,
        config: MachineConfig | None = None,
        batch: int = 200,
        consumer: str | None = None,
    ) -> None:
        self.client = client
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.keys = keys
        self.config = config or MachineConfig()
        self.batch = batch
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.dead_letters = DeadLetters(client, keys)
        self.ensure_group()

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.keys.events, ORCHESTRATOR_GROUP, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- the loop ----------------------------------------------------------------------------
    def poll(self, block_ms: int | None = 1000) -> int:
        """Read one batch of new events, apply them, acknowledge them. Returns events handled."""
        try:
            rows: Any = self.client.xreadgroup(
                ORCHESTRATOR_GROUP,
                self.consumer,
                {self.keys.events: ">"},
                count=self.batch,
                block=block_ms,
            )
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group()
            return 0
        return self._handle_rows(rows[0][1] if rows else [])

    def reclaim(self, min_idle_ms: int = 30_000) -> int:
        """Take over events another consumer read but never acknowledged (it crashed)."""
        got: Any = self.client.xautoclaim(
            self.keys.events,
            ORCHESTRATOR_GROUP,
            self.consumer,
            min_idle_time=min_idle_ms,
            start_id="0-0",
            count=self.batch,
        )
        return self._handle_rows(got[1] if len(got) > 1 else [])

    def _handle_rows(self, entries: list[Any]) -> int:
        ids = []
        events: list[JobEvent] = []
        for entry_id, fields in entries:
            ids.append(entry_id)
            if not fields:  # deleted entry
                continue
            raw = fields.get(b"event") or fields.get("event")
            try:
                events.append(JobEvent.model_validate_json(raw))
            except (ValidationError, TypeError) as exc:
                self._dead_letter_event(entry_id, fields, exc)
        if events:
            self.handle_batch(events)
        if ids:
            self.client.xack(self.keys.events, ORCHESTRATOR_GROUP, *ids)
        return len(ids)

    def handle_batch(self, events: list[JobEvent]) -> None:
        """Apply a batch in three round trips: load all jobs, commit all, dispatch all.

        A second event for a job already in this batch, and any commit that loses its
        compare-and-set, goes through :meth:`handle` one at a time afterwards.
        """
        loaded = self.jobs.load_many([e.job_id for e in events])
        todo: list[tuple[JobEvent, JobState, str, Transition]] = []
        later: list[JobEvent] = []
        busy: set[str] = set()
        for event, got in zip(events, loaded, strict=True):
            if event.job_id in busy:
                later.append(event)
                continue
            if got is None:
                log.warning("event.unknown_job", job_id=event.job_id, type=event.type)
                continue
            if isinstance(got, CorruptRecord):
                self._quarantine(got, event)
                continue
            state, version = got
            t = self._advance(state, event)
            if t is not None and t.changed:
                busy.add(event.job_id)
                todo.append((event, state, version, t))
        oks = self.jobs.commit_many([(s, v, t) for _, s, v, t in todo])
        with self.dispatcher.batch():
            for (event, _state, _version, t), ok in zip(todo, oks, strict=True):
                if isinstance(ok, CorruptRecord):
                    self._quarantine(ok, event)
                elif ok:
                    self._applied(event, t)
                else:
                    later.append(event)
        for event in later:
            self.handle(event)

    # -- one event ---------------------------------------------------------------------------
    def handle(self, event: JobEvent) -> bool:
        """Apply one event to its job. True when it changed the job."""
        for _ in range(MAX_CAS_RETRIES):
            loaded = self.jobs.load_many([event.job_id])[0]
            if loaded is None:
                log.warning("event.unknown_job", job_id=event.job_id, type=event.type)
                return False
            if isinstance(loaded, CorruptRecord):
                self._quarantine(loaded, event)
                return False
            state, version = loaded
            t = self._advance(state, event)
            if t is None or not t.changed:
                return False
            ok = self.jobs.commit_many([(state, version, t)])[0]
            if isinstance(ok, CorruptRecord):
                self._quarantine(ok, event)
                return False
            if ok:
                self._applied(event, t)
                return True
        log.error("event.cas_exhausted", job_id=event.job_id, type=event.type)
        return False

    # -- records that cannot be read or applied ------------------------------------------------
    def _advance(self, state: JobState, event: JobEvent) -> Transition | None:
        """``advance``, or None after quarantining a job it cannot be computed for."""
        try:
            return advance(state, event, self.config)
        except Exception as exc:  # isolate one record: see the module docstring
            reason = f"cannot apply {event.type}: {type(exc).__name__}: {exc}"
            self._quarantine(CorruptRecord(state.job_id, reason[:500]), event)
            return None

    def _quarantine(self, bad: CorruptRecord, event: JobEvent) -> None:
        if self.jobs.quarantine(bad, source=f"event {event.type}"):
            metrics.JOBS_QUARANTINED.inc()
            log.error(
                "job.quarantined", job_id=bad.job_id, reason=bad.reason, event_type=event.type
            )

    def _dead_letter_event(self, entry_id: Any, fields: dict[Any, Any], exc: Exception) -> None:
        """An entry of the events stream that is not a JobEvent: kept, acknowledged, reported."""
        raw = {
            (k.decode() if isinstance(k, bytes) else str(k)): (
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            )[:4096]
            for k, v in fields.items()
        }
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        reason = f"invalid event {entry}: {' '.join(str(exc).split())[:300]}"
        self.dead_letters.put(
            task="ragrelay.orchestrator",
            queue="orchestrator",
            payload=raw,
            reason=reason,
            kind="invalid_event",
        )
        log.error("event.invalid", entry=entry, error=reason)

    def _applied(self, event: JobEvent, t: Transition) -> None:
        metrics.EVENTS_APPLIED.labels(event.type).inc()
        record_metrics(t.state, t.trace)
        self._carry_out(t.state.job_id, t.commands, event)

    def _carry_out(self, job_id: str, commands: list[Any], event: JobEvent) -> None:
        headers = {"job_id": job_id, "trace_id": job_id}
        for cmd in commands:
            if isinstance(cmd, Dispatch):
                self.dispatcher.send(
                    cmd.stage,
                    cmd.payload,
                    task_id=f"{cmd.step_id}@{cmd.attempt}",
                    headers={**headers, "traceparent": traceparent_for(job_id, cmd.step_id)},
                )
            elif isinstance(cmd, Finish):
                log.info(
                    "job.finished",
                    job_id=job_id,
                    status=cmd.result.status,
                    stop_reason=cmd.result.stop_reason,
                )


def record_metrics(state: JobState, trace: list[TraceEvent]) -> None:
    """Tokens and cost by model and tenant, evaluation scores, finished jobs."""
    tenant = state.request.tenant
    for e in trace:
        if e.type == "step.completed":
            model = str(e.detail.get("model") or "none")
            usage = e.detail.get("usage") or {}
            for kind in ("input", "output", "cache_read", "cache_write"):
                n = usage.get(f"{kind}_tokens", 0)
                if n:
                    metrics.TOKENS.labels(model, tenant, kind).inc(n)
            if usage.get("cost_usd"):
                metrics.COST_USD.labels(model, tenant).inc(usage["cost_usd"])
            for name, score in (e.detail.get("scores") or {}).items():
                metrics.EVAL_SCORE.labels(name).observe(score)
        elif e.type == "job.finished":
            metrics.JOBS_FINISHED.labels(
                tenant, e.outcome or "unknown", str(e.detail.get("stop_reason"))
            ).inc()
            metrics.JOB_ITERATIONS.observe(state.iteration)
            metrics.JOB_SECONDS.labels(tenant).observe(max(0.0, e.at - state.created_at))


def wait_result(
    jobs: JobStore, job_id: str, *, timeout_s: float, poll: Any = None
) -> JobResult | None:
    """Block until the job's final result exists (or time runs out)."""
    deadline = time.monotonic() + timeout_s
    last: Any = "$"
    key = jobs.keys.trace(job_id)
    while True:
        result = jobs.result(job_id)
        if result is not None:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if poll is not None:
            poll()
            continue
        rows: Any = jobs.client.xread({key: last}, block=int(min(remaining, 1.0) * 1000) or 1)
        if rows:
            last = rows[0][1][-1][0]

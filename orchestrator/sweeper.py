"""The sweeper: turns overdue steps and past-deadline jobs into events on the stream."""

from __future__ import annotations

import time

from bus import logging as blog
from bus.events import EventLog
from orchestrator.jobs import JobStore
from schemas import JobEvent

log = blog.get_logger("ragrelay.sweeper")


def sweep(jobs: JobStore, events: EventLog, *, step_timeout_s: float,
          now: float | None = None) -> dict[str, int]:
    """One pass over running jobs. Events are idempotent, so several sweepers are safe."""
    now = time.time() if now is None else now
    counts = {"deadline": 0, "timeout": 0}
    for job_id, deadline_at in jobs.running():
        if deadline_at <= now:
            events.emit(JobEvent(type="job.deadline", job_id=job_id, at=now))
            counts["deadline"] += 1
            continue
        loaded = jobs.load(job_id)
        if loaded is None:
            continue
        state, _ = loaded
        for step in state.pending.values():
            if step.dispatched_at + step_timeout_s <= now:
                events.emit(JobEvent(type="step.timeout", job_id=job_id, step_id=step.step_id,
                                     stage=step.stage, at=now,
                                     payload={"attempt": step.attempt}))
                counts["timeout"] += 1
    if counts["deadline"] or counts["timeout"]:
        log.info("sweep", **counts)
    return counts

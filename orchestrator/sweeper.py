"""The sweeper: turns overdue steps and past-deadline jobs into events on the stream.

A running job whose record cannot be read is quarantined here too (its events may never
come), and an entry of the running set with no job behind it is dropped, so no pass
repeats work for a record that will never load.
"""

from __future__ import annotations

import time

from bus import logging as blog
from bus.errors import CorruptRecord
from bus.events import EventLog
from orchestrator.jobs import JobStore
from schemas import JobEvent

log = blog.get_logger("ragrelay.sweeper")


def sweep(
    jobs: JobStore, events: EventLog, *, step_timeout_s: float, now: float | None = None
) -> dict[str, int]:
    """One pass over running jobs. Events are idempotent, so several sweepers are safe."""
    now = time.time() if now is None else now
    counts = {"deadline": 0, "timeout": 0, "quarantined": 0, "orphans": 0}
    for job_id, deadline_at in jobs.running():
        if deadline_at <= now:
            if jobs.drop_orphan(job_id):  # else its deadline event would come every pass
                counts["orphans"] += 1
                continue
            events.emit(JobEvent(type="job.deadline", job_id=job_id, at=now))
            counts["deadline"] += 1
            continue
        try:
            loaded = jobs.load(job_id)
        except CorruptRecord as bad:
            if jobs.quarantine(bad, source="sweeper"):
                log.error("job.quarantined", job_id=job_id, reason=bad.reason)
                counts["quarantined"] += 1
            continue
        if loaded is None:
            counts["orphans"] += jobs.drop_orphan(job_id)
            continue
        state, _ = loaded
        for step in state.pending.values():
            if step.dispatched_at + step_timeout_s <= now:
                events.emit(
                    JobEvent(
                        type="step.timeout",
                        job_id=job_id,
                        step_id=step.step_id,
                        stage=step.stage,
                        at=now,
                        payload={"attempt": step.attempt},
                    )
                )
                counts["timeout"] += 1
    if any(counts.values()):
        log.info("sweep", **counts)
    return counts

"""Events of a job's trace: what ran, where, how long, what it cost."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from schemas.base import Message


class TraceEvent(Message):
    job_id: str
    type: str  # e.g. job.submitted, step.dispatched, step.completed, step.failed, job.finished
    at: float
    stage: str | None = None
    step_id: str | None = None
    iteration: int | None = None
    worker_host: str | None = None
    worker_pid: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    outcome: str | None = None  # ok | retry | failed | degraded | accept | revise | ...
    detail: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration_ms(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at) * 1000.0

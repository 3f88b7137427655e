"""Events on the orchestrator's stream: what workers and ingress report back."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import Message

EventType = Literal[
    "job.submitted",  # ingress created the job
    "step.result",  # a worker finished a step (payload = the stage result)
    "step.failed",  # a worker gave up on a step (retries spent, permanent error, bad message)
    "step.timeout",  # the sweeper saw a step overdue
    "job.deadline",  # the sweeper saw a job past its deadline
]


class JobEvent(Message):
    type: EventType
    job_id: str
    at: float
    step_id: str | None = None
    stage: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # invalid | permanent | transient_exhausted
    worker_host: str | None = None
    worker_pid: int | None = None

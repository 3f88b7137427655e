"""A job's state as the orchestrator keeps it (one JSON document per job in Redis)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas import Chunk, Citation, JobRequest, JobResult, ScoredChunk, Usage
from schemas.stages import Stage

Phase = Literal["new", "done"] | Stage


class PendingStep(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    step_id: str
    # a str, not ``Stage``: a stored record; the machine looks the stage up in the registry
    stage: str
    attempt: int = 1
    dispatched_at: float
    payload: dict[str, Any]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    text: str
    short_answer: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    iteration: int
    score: float = -1.0
    scores: dict[str, float] = Field(default_factory=dict)


class JobState(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    job_id: str
    request: JobRequest
    created_at: float
    deadline_at: float
    reply_task_id: str | None = None  # a Celery ingress task id whose result we publish
    status: Literal["running", "succeeded", "budget_exhausted", "failed"] = "running"
    phase: Phase = "new"
    iteration: int = 1
    pending: dict[str, PendingStep] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    rewrites: list[str] = Field(default_factory=list)
    tried_rewrites: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    triage: str | None = None
    shard_hits: dict[str, list[ScoredChunk]] = Field(default_factory=dict)
    context: list[Chunk] = Field(default_factory=list)
    retrieved_ids: list[str] = Field(default_factory=list)
    answer: Answer | None = None
    best: Answer | None = None
    feedback: str | None = None
    degraded: list[str] = Field(default_factory=list)
    stop_reason: str | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        return self.status != "running"


def build_result(state: JobState) -> JobResult:
    best = state.best or state.answer
    return JobResult(
        job_id=state.job_id,
        tenant=state.request.tenant,
        kind=state.request.kind,
        status=state.status if state.status != "running" else "failed",
        answer=best.text if best else "",
        short_answer=best.short_answer if best else None,
        citations=list(best.citations) if best else [],
        iterations=state.iteration,
        stop_reason=state.stop_reason or "unknown",
        usage=state.usage,
        scores=dict(best.scores) if best else {},
        degraded=list(state.degraded),
        triage=state.triage,
        error=state.error,
    )

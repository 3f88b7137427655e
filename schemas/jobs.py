"""What a caller submits and what it gets back."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from schemas.base import Message
from schemas.documents import Citation
from schemas.limits import Metadata
from schemas.trace import TraceEvent

JobKind = Literal["question", "email_reply"]
JobStatus = Literal["running", "succeeded", "budget_exhausted", "failed", "rejected"]
#: ``rejected``: refused at the door by admission control; it never ran.
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "budget_exhausted", "failed", "rejected"})

MAX_QUERY_CHARS = 20_000


class Budget(Message):
    """Limits of one job. Every one is enforced by the orchestrator before each dispatch.

    Strict: ``"3"`` or ``true`` is not a number of iterations (a client that sends them has
    a bug worth hearing about), and every bound is finite.
    """

    model_config = ConfigDict(strict=True)

    max_iterations: int = Field(3, ge=1, le=20, description="evaluate→rewrite loops at most")
    max_llm_calls: int = Field(20, ge=1, le=1000)
    max_tokens: int = Field(60_000, ge=1, le=100_000_000)
    max_cost_usd: float = Field(0.50, ge=0, le=100_000)
    deadline_s: float = Field(120.0, gt=0, le=86_400)


class Usage(Message):
    """Resources used; added up centrally from every stage result."""

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            llm_calls=self.llm_calls + other.llm_calls,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
        )


class JobRequest(Message):
    """A job as submitted by any ingress (CLI, HTTP, ``send_task``, inbox)."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    tenant: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    user_id: str | None = Field(None, max_length=128)
    kind: JobKind = "question"
    budget: Budget = Field(default_factory=Budget)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("query")
    @classmethod
    def _query_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query must not be blank")
        return value


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobResult(Message):
    """The one final result of a job."""

    job_id: str
    tenant: str
    kind: JobKind = "question"
    status: JobStatus
    answer: str = ""
    short_answer: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    iterations: int = 0
    stop_reason: str
    usage: Usage = Field(default_factory=Usage)
    scores: dict[str, float] = Field(default_factory=dict)
    degraded: list[str] = Field(default_factory=list)
    triage: str | None = None
    error: str | None = None
    trace: list[TraceEvent] = Field(default_factory=list)

"""Bodies of the HTTP API (what the OpenAPI document shows)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas import SCHEMA_VERSION, Budget, JobKind, JobRequest, JobResult, JobStatus
from schemas.jobs import MAX_QUERY_CHARS
from schemas.limits import Metadata


class JobSubmission(BaseModel):
    """A ``JobRequest`` without ``tenant``: the tenant is the API key's."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    schema_version: int = SCHEMA_VERSION
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    user_id: str | None = Field(None, max_length=128)
    kind: JobKind = "question"
    budget: Budget = Field(default_factory=Budget)
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=200, description="or send the Idempotency-Key header"
    )
    metadata: Metadata = Field(default_factory=dict)

    def to_request(self, tenant: str, idempotency_key: str | None) -> JobRequest:
        """Validated as a JobRequest (raises pydantic's ValidationError, shown as 422)."""
        data = self.model_dump()
        if idempotency_key is not None:
            data["idempotency_key"] = idempotency_key
        return JobRequest.model_validate({**data, "tenant": tenant})


class JobLinks(BaseModel):
    self: str
    events: str
    feedback: str


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    created: bool = Field(description="false when the idempotency key named an existing job")
    links: JobLinks


class JobView(BaseModel):
    job_id: str
    tenant: str
    status: JobStatus
    phase: str | None = None
    iteration: int | None = None
    created_at: float | None = None
    result: JobResult | None = Field(None, description="the JobResult once the job has ended")
    links: JobLinks


class FeedbackAccepted(BaseModel):
    feedback_id: str
    job_id: str


class UserContextView(BaseModel):
    user_id: str
    context: dict[str, Any]


class ErrorBody(BaseModel):
    detail: str


class ConflictBody(BaseModel):
    detail: str
    job_id: str = Field(description="the job the Idempotency-Key already names")
    links: JobLinks


class FieldError(BaseModel):
    field: str
    message: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[FieldError]


def links(job_id: str) -> JobLinks:
    base = f"/v1/jobs/{job_id}"
    return JobLinks(self=base, events=f"{base}/events", feedback=f"{base}/feedback")

"""/v1/jobs: submit, read, watch (SSE), feedback. A tenant sees only its own jobs (403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Response, status
from fastapi.responses import StreamingResponse

from orchestrator.feedback import FeedbackIn
from orchestrator.gateway.auth import Svc, Tenant
from orchestrator.gateway.errors import InvalidField
from orchestrator.gateway.models import (
    ErrorBody,
    FeedbackAccepted,
    JobAccepted,
    JobSubmission,
    JobView,
    ValidationErrorBody,
    links,
)
from orchestrator.gateway.services import Services
from orchestrator.gateway.sse import trace_stream, valid_entry_id
from orchestrator.state import JobState
from schemas import JobResult

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$",
                            description="The job id (for Celery ingress: the task id)")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    403: {"model": ErrorBody, "description": "the job belongs to another tenant"},
    404: {"model": ErrorBody, "description": "no such job"},
    413: {"model": ErrorBody, "description": "request body too large"},
    422: {"model": ValidationErrorBody, "description": "invalid input; `errors` name the fields"},
    429: {"model": ErrorBody, "description": "rate limit exceeded; see Retry-After"},
}


def owned_job(svc: Services, job_id: str, tenant: str) -> tuple[JobState | None, JobResult | None]:
    """The job's state and result, if it exists and is ``tenant``'s (else 404 / 403)."""
    loaded = svc.jobs.load(job_id)
    state = loaded[0] if loaded else None
    result = svc.jobs.result(job_id)
    if state is None and result is None:
        raise HTTPException(404, f"no job {job_id}")
    owner = state.request.tenant if state is not None else result.tenant  # type: ignore[union-attr]
    if owner != tenant:
        raise HTTPException(403, "this job belongs to another tenant")
    return state, result


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted,
             responses=ERRORS)
def submit_job(
    body: JobSubmission,
    tenant: Tenant,
    svc: Svc,
    response: Response,
    idempotency_key: Annotated[str | None, Header(
        alias="Idempotency-Key", min_length=1, max_length=200,
        description="The same key (per tenant) always names the same job")] = None,
) -> JobAccepted:
    """Submit a job (a JobRequest without `tenant`). The same Idempotency-Key → the same job."""
    if (idempotency_key is not None and body.idempotency_key is not None
            and idempotency_key != body.idempotency_key):
        raise InvalidField("body.idempotency_key", "differs from the Idempotency-Key header")
    request = body.to_request(tenant, idempotency_key)
    job_id, created = svc.jobs.submit(request)
    loaded = svc.jobs.load(job_id)
    result = svc.jobs.result(job_id)
    state_status = loaded[0].status if loaded else "running"
    response.headers["Location"] = links(job_id).self
    return JobAccepted(job_id=job_id, status=result.status if result else state_status,
                       created=created, links=links(job_id))


@router.get("/{job_id}", response_model=JobView, responses=ERRORS)
def get_job(job_id: JobId, tenant: Tenant, svc: Svc) -> JobView:
    """The job's status and, once it has ended, its JobResult."""
    state, result = owned_job(svc, job_id, tenant)
    return JobView(
        job_id=job_id, tenant=tenant,
        status=result.status if result else (state.status if state else "running"),
        phase=state.phase if state else None,
        iteration=state.iteration if state else None,
        created_at=state.created_at if state else None,
        result=result, links=links(job_id),
    )


@router.get("/{job_id}/events", responses={
    **ERRORS,
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "the trace as Server-Sent Events, ending with `event: result`"},
}, response_class=StreamingResponse)
def job_events(
    job_id: JobId,
    tenant: Tenant,
    svc: Svc,
    last_event_id: Annotated[str | None, Header(
        alias="Last-Event-ID", max_length=41,
        description="Resume after this trace entry id (the `id:` of an event)")] = None,
) -> StreamingResponse:
    """Server-Sent Events of the job's trace as it happens, ending with the final result."""
    if last_event_id is not None and not valid_entry_id(last_event_id):
        raise InvalidField("header.Last-Event-ID",
                           "expected a trace entry id like 1700000000000-0")
    owned_job(svc, job_id, tenant)
    cfg = svc.config
    frames = trace_stream(svc.aredis, svc.keys, job_id, after=last_event_id,
                          block_ms=cfg.sse_block_ms, keepalive_s=cfg.sse_keepalive_s,
                          max_s=cfg.sse_max_s)
    return StreamingResponse(frames, media_type="text/event-stream", headers={
        "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
    })


@router.post("/{job_id}/feedback", status_code=status.HTTP_201_CREATED,
             response_model=FeedbackAccepted, responses=ERRORS)
def job_feedback(job_id: JobId, body: FeedbackIn, tenant: Tenant, svc: Svc) -> FeedbackAccepted:
    """Rate the job's answer, comment, correct it: stored with the job for the eval set."""
    state, result = owned_job(svc, job_id, tenant)
    record = svc.feedback.add(job_id, tenant, body,
                              query=state.request.query if state else None, result=result)
    return FeedbackAccepted(feedback_id=record.feedback_id, job_id=job_id)

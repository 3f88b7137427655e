"""/v1/jobs: submit, read, watch (SSE), feedback. A tenant sees only its own jobs (403)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from bus.errors import AdmissionRejected, CorruptRecord, IdempotencyConflict
from orchestrator.state import JobState
from ragrelay.feedback import FeedbackIn
from ragrelay.gateway.auth import Svc, Tenant, bearer
from ragrelay.gateway.errors import InvalidField
from ragrelay.gateway.keys_store import key_id_of
from ragrelay.gateway.models import (
    ConflictBody,
    ErrorBody,
    FeedbackAccepted,
    JobAccepted,
    JobSubmission,
    JobView,
    ValidationErrorBody,
    links,
)
from ragrelay.gateway.services import Services
from ragrelay.gateway.sse import trace_stream, valid_entry_id
from ragrelay.gateway.streams import LeasedEventStream
from schemas import JobResult

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The job id (for Celery ingress: the task id)",
    ),
]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    403: {"model": ErrorBody, "description": "the job belongs to another tenant"},
    404: {"model": ErrorBody, "description": "no such job"},
    410: {"model": ErrorBody, "description": "the job's stored result cannot be read"},
    413: {"model": ErrorBody, "description": "request body too large"},
    422: {"model": ValidationErrorBody, "description": "invalid input; `errors` name the fields"},
    429: {"model": ErrorBody, "description": "rate limit exceeded; see Retry-After"},
}
SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {
        "model": ConflictBody,
        "description": "the Idempotency-Key names a job submitted with a different body",
    },
    429: {
        "model": ErrorBody,
        "description": "rate limit exceeded, or admission control refused the job (a stage "
        "queue or the tenant's jobs in flight are at their limit: `X-Ragrelay-Limit` names "
        "it); see Retry-After",
    },
}


def owned_job(svc: Services, job_id: str, tenant: str) -> tuple[JobState | None, JobResult | None]:
    """The job's state and result, if it exists and is ``tenant``'s (else 404 / 403).

    Ownership is decided first, from a plain field that cannot fail to parse, so nothing of
    another tenant's job is loaded. A job of ``tenant``'s whose record cannot be read is
    quarantined on the spot: its owner gets the failed result that says so.
    """
    owner = svc.jobs.owner(job_id)
    if owner is None:
        raise HTTPException(404, f"no job {job_id}")
    if owner != tenant:
        raise HTTPException(403, "this job belongs to another tenant")
    try:
        loaded = svc.jobs.load(job_id)
    except CorruptRecord as bad:
        svc.jobs.quarantine(bad, source="gateway")
        loaded = None
    try:
        result = svc.jobs.result(job_id)
    except CorruptRecord as bad:
        raise HTTPException(
            410, f"the result of job {job_id} cannot be read ({bad.reason})"
        ) from bad
    state = loaded[0] if loaded else None
    if state is None and result is None:
        raise HTTPException(404, f"no job {job_id}")
    return state, result


@router.post(
    "", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted, responses=SUBMIT_ERRORS
)
def submit_job(
    body: JobSubmission,
    tenant: Tenant,
    svc: Svc,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="The same key (per tenant) always names the same job",
        ),
    ] = None,
) -> JobAccepted | JSONResponse:
    """Submit a job (a JobRequest without `tenant`). The same Idempotency-Key → the same job."""
    if (
        idempotency_key is not None
        and body.idempotency_key is not None
        and idempotency_key != body.idempotency_key
    ):
        raise InvalidField("body.idempotency_key", "differs from the Idempotency-Key header")
    request = body.to_request(tenant, idempotency_key)
    try:
        job_id, created = svc.jobs.submit(request)
    except IdempotencyConflict as exc:
        return JSONResponse(
            ConflictBody(detail=str(exc), job_id=exc.job_id, links=links(exc.job_id)).model_dump(),
            status_code=409,
            headers={"Location": links(exc.job_id).self},
        )
    except AdmissionRejected as exc:
        raise HTTPException(
            429,
            str(exc),
            headers={
                "Retry-After": str(exc.retry_after_s),
                "X-Ragrelay-Limit": f"{exc.limit}; subject={exc.subject}; max={exc.maximum}",
            },
        ) from exc
    state, result = owned_job(svc, job_id, tenant)
    response.headers["Location"] = links(job_id).self
    status_now = result.status if result else (state.status if state else "running")
    return JobAccepted(job_id=job_id, status=status_now, created=created, links=links(job_id))


@router.get("/{job_id}", response_model=JobView, responses=ERRORS)
def get_job(job_id: JobId, tenant: Tenant, svc: Svc) -> JobView:
    """The job's status and, once it has ended, its JobResult."""
    state, result = owned_job(svc, job_id, tenant)
    return JobView(
        job_id=job_id,
        tenant=tenant,
        status=result.status if result else (state.status if state else "running"),
        phase=state.phase if state else None,
        iteration=state.iteration if state else None,
        created_at=state.created_at if state else None,
        # with its trace, as `ask --json` and the Celery result give it
        result=result.model_copy(update={"trace": [e for _, e in svc.jobs.trace(job_id)]})
        if result
        else None,
        links=links(job_id),
    )


@router.get(
    "/{job_id}/events",
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "the trace as Server-Sent Events, ending with `event: result`",
        },
        429: {
            "model": ErrorBody,
            "description": "rate limit exceeded, or the API key or tenant "
            "already has its most open event streams; see "
            "Retry-After",
        },
        503: {
            "model": ErrorBody,
            "description": "this gateway process serves its most event "
            "streams, or Redis is unavailable; see Retry-After",
        },
    },
    response_class=StreamingResponse,
)
def job_events(
    job_id: JobId,
    tenant: Tenant,
    svc: Svc,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=41,
            description="Resume after this trace entry id (the `id:` of an event)",
        ),
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events of the job's trace as it happens, ending with the final result.

    Open streams are capped per API key and per tenant (429) and per gateway process (503).
    """
    if last_event_id is not None and not valid_entry_id(last_event_id):
        raise InvalidField("header.Last-Event-ID", "expected a trace entry id like 1700000000000-0")
    owned_job(svc, job_id, tenant)
    cfg = svc.config
    # `tenant` authenticated this very key, so the key id it names is its own.
    admission = svc.streams.admit(tenant, key_id_of(creds.credentials) if creds else None)
    if admission.lease is None:
        raise HTTPException(
            429, admission.refused, headers={"Retry-After": str(cfg.sse_retry_after_s)}
        )
    frames = trace_stream(
        svc.aredis,
        svc.keys,
        job_id,
        after=last_event_id,
        block_ms=cfg.sse_block_ms,
        keepalive_s=cfg.sse_keepalive_s,
        max_s=cfg.sse_max_s,
    )
    return LeasedEventStream(
        frames,
        limiter=svc.streams,
        lease=admission.lease,
        retry_after_s=cfg.sse_retry_after_s,
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )


@router.post(
    "/{job_id}/feedback",
    status_code=status.HTTP_201_CREATED,
    response_model=FeedbackAccepted,
    responses=ERRORS,
)
def job_feedback(job_id: JobId, body: FeedbackIn, tenant: Tenant, svc: Svc) -> FeedbackAccepted:
    """Rate the job's answer, comment, correct it: stored with the job for the eval set."""
    state, result = owned_job(svc, job_id, tenant)
    record = svc.feedback.add(
        job_id, tenant, body, query=state.request.query if state else None, result=result
    )
    return FeedbackAccepted(feedback_id=record.feedback_id, job_id=job_id)

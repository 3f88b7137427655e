"""``GET /ui/jobs/{job_id}``: the job's timeline page, as an APIRouter any app can mount.

``build_ui_router(get_job, authenticate=...)`` is storage-agnostic: ``get_job`` returns the
job's tenant, result and trace. ``gateway_ui_router(services)`` wires it to the HTTP
gateway's stores and API keys: the same ``rr_...`` key as the JSON API, sent as
``Authorization: Bearer <key>`` or — because a browser address bar cannot set headers — as
``?key=<key>``. A key sees only its own tenant's jobs (403), and the tenant's rate limit
applies as on every ``/v1`` route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Query
from fastapi.responses import HTMLResponse

from ragrelay.gateway.auth import tenant_for_key
from ragrelay.gateway.models import ErrorBody, ValidationErrorBody
from ragrelay.observe.page import render_timeline
from schemas import JobResult, TraceEvent

if TYPE_CHECKING:
    from ragrelay.gateway.services import Services

# The page is self-contained: inline style and script only, nothing fetched, no referrer
# (the key may be in the address).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "script-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class JobPage:
    """What the page needs: whose job it is, its result once final, its trace."""

    tenant: str
    result: JobResult | None
    trace: list[TraceEvent]


JobLookup = Callable[[str], JobPage | None]
Authenticate = Callable[[str | None], str]  # the key (or None) -> tenant; raises HTTPException

JobIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


def bearer_or_query(authorization: str | None, key: str | None) -> str | None:
    """The API key from ``Authorization: Bearer <key>``, else from ``?key=``."""
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return key or None


def build_ui_router(get_job: JobLookup, authenticate: Authenticate | None = None) -> APIRouter:
    """The router serving ``/ui/jobs/{job_id}``. Without ``authenticate`` the page is open
    (only for a local viewer on loopback); the gateway passes its API-key check."""
    router = APIRouter(tags=["ui"])

    # Errors are the gateway's JSON bodies; only the 200 is HTML (so no response_class).
    @router.get("/ui/jobs/{job_id}", response_model=None, responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}},
              "description": "the job's timeline page"},
        401: {"model": ErrorBody, "description": "missing or invalid API key"},
        403: {"model": ErrorBody, "description": "the job belongs to another tenant"},
        404: {"model": ErrorBody, "description": "no such job"},
        422: {"model": ValidationErrorBody, "description": "invalid job id or key parameter"},
        429: {"model": ErrorBody, "description": "rate limit exceeded; see Retry-After"},
    })
    def job_page(
        job_id: JobIdPath,
        key: Annotated[str | None, Query(max_length=200,
                                         description="API key, when no header can be sent")] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> HTMLResponse:
        """The job's timeline: stages as bars on worker lanes, iterations, scores, cost, answer."""
        tenant = authenticate(bearer_or_query(authorization, key)) if authenticate else None
        page = get_job(job_id)
        if page is None:
            raise HTTPException(404, f"no job {job_id}")
        if tenant is not None and page.tenant != tenant:
            raise HTTPException(403, "this job belongs to another tenant")
        return HTMLResponse(render_timeline(page.result, page.trace), headers=PAGE_HEADERS)

    return router


def gateway_ui_router(svc: Services) -> APIRouter:
    """``build_ui_router`` over the gateway's Redis stores and API keys."""

    def get_job(job_id: str) -> JobPage | None:
        loaded = svc.jobs.load(job_id)
        result = svc.jobs.result(job_id)
        if loaded is None and result is None:
            return None
        tenant = loaded[0].request.tenant if loaded is not None else result.tenant  # type: ignore[union-attr]
        return JobPage(tenant=tenant, result=result,
                       trace=[e for _, e in svc.jobs.trace(job_id)])

    def authenticate(key: str | None) -> str:
        return tenant_for_key(svc, key, missing="missing API key: send `Authorization: Bearer "
                                                "<key>` or add `?key=<key>` to the address")

    return build_ui_router(get_job, authenticate)


__all__ = ["JobPage", "bearer_or_query", "build_ui_router", "gateway_ui_router"]

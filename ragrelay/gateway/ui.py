"""``GET /ui/jobs/{job_id}``: the job's timeline page, as an APIRouter any app can mount.

``build_ui_router(get_job, authenticate=...)`` is storage-agnostic: ``get_job`` returns the
job's tenant, result and trace; ``authenticate`` is a FastAPI dependency naming the
request's tenant. ``gateway_ui_router(services)`` wires it to the HTTP gateway's stores and
API keys, with the browser sign-in of ``ragrelay.gateway.ui_signin``: the same
``rr_...`` key as the JSON API as ``Authorization: Bearer <key>`` (scripts), or the session
cookie that the sign-in form at ``/ui/login`` sets (browsers). A key in the address
(``?key=``) is refused. A tenant sees only its own jobs (403), and the tenant's rate limit
applies as on every ``/v1`` route. ``UiSecurityHeaders`` gives every ``/ui`` response,
errors included, a strict CSP, ``nosniff``, ``no-referrer`` and ``no-store``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from fastapi.responses import HTMLResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.errors import CorruptRecord
from ragrelay.gateway.models import ErrorBody, ValidationErrorBody
from ragrelay.gateway.ui_signin import (
    BrowserSessions,
    signin_router,
    ui_authenticator,
)
from ragrelay.observe.page import PAGE_CSP, render_timeline
from schemas import JobResult, TraceEvent

if TYPE_CHECKING:
    from ragrelay.gateway.services import Services

# The page is self-contained: its own inline style and script (allowed by hash), nothing
# fetched, no referrer, never cached (it shows a tenant's data), never framed.
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# What every other /ui response (redirects, JSON errors) gets: nothing may run or load.
DEFAULT_UI_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
}


@dataclass(frozen=True)
class JobPage:
    """What the page needs: whose job it is, its result once final, its trace."""

    tenant: str
    result: JobResult | None
    trace: list[TraceEvent]


JobLookup = Callable[[str], JobPage | None]
# A FastAPI dependency: the request's tenant, or an HTTPException (401, 303 to sign in, 429).
Authenticate = Callable[..., str]

JobIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


def _anyone() -> None:
    return None


def build_ui_router(get_job: JobLookup, authenticate: Authenticate | None = None) -> APIRouter:
    """The router serving ``/ui/jobs/{job_id}``. Without ``authenticate`` the page is open
    (only for a local viewer on loopback); the gateway passes its key and session check."""
    router = APIRouter(tags=["ui"])
    who: Callable[..., str | None] = authenticate or _anyone

    # Errors are the gateway's JSON bodies; only the 200 is HTML (so no response_class).
    @router.get(
        "/ui/jobs/{job_id}",
        response_model=None,
        responses={
            200: {
                "content": {"text/html": {"schema": {"type": "string"}}},
                "description": "the job's timeline page",
            },
            303: {
                "model": ErrorBody,
                "description": "a browser (Accept: text/html) without a "
                "session: sign in at the Location",
            },
            401: {
                "model": ErrorBody,
                "description": "missing or invalid API key or session, "
                "or a key in the address (?key=)",
            },
            403: {"model": ErrorBody, "description": "the job belongs to another tenant"},
            404: {"model": ErrorBody, "description": "no such job"},
            422: {"model": ValidationErrorBody, "description": "invalid job id"},
            429: {"model": ErrorBody, "description": "rate limit exceeded; see Retry-After"},
        },
    )
    def job_page(job_id: JobIdPath, tenant: str | None = Depends(who)) -> HTMLResponse:
        """The job's timeline: stages as bars on worker lanes, iterations, scores, cost, answer.
        Send `Authorization: Bearer <key>`, or sign in from a browser at /ui/login."""
        page = get_job(job_id)
        if page is None:
            raise HTTPException(404, f"no job {job_id}")
        if tenant is not None and page.tenant != tenant:
            raise HTTPException(403, "this job belongs to another tenant")
        return HTMLResponse(render_timeline(page.result, page.trace), headers=PAGE_HEADERS)

    return router


def gateway_ui_router(svc: Services) -> APIRouter:
    """``build_ui_router`` over the gateway's Redis stores and API keys, with the browser
    sign-in routes (``/ui/login``, ``/ui/session``, ``/ui/logout``)."""

    def get_job(job_id: str) -> JobPage | None:
        # the owner comes from a plain field (JobStore.owner), so a job whose state cannot
        # be read still answers 403 to others; its page is built from result and trace only
        tenant = svc.jobs.owner(job_id)
        if tenant is None:
            return None
        try:
            result = svc.jobs.result(job_id)
        except CorruptRecord:
            result = None
        return JobPage(tenant=tenant, result=result, trace=[e for _, e in svc.jobs.trace(job_id)])

    sessions = BrowserSessions.for_gateway(svc)
    router = build_ui_router(get_job, ui_authenticator(sessions))
    router.include_router(signin_router(sessions))
    return router


class UiSecurityHeaders:
    """ASGI middleware: every response under ``/ui`` gets ``DEFAULT_UI_HEADERS`` it does not
    set itself (a page keeps its own CSP), so redirects and JSON errors are covered too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/ui" or path.startswith("/ui/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULT_UI_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


__all__ = [
    "DEFAULT_UI_HEADERS",
    "PAGE_HEADERS",
    "JobPage",
    "UiSecurityHeaders",
    "build_ui_router",
    "gateway_ui_router",
]

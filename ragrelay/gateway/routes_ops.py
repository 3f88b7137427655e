"""Unauthenticated operations routes: /healthz, /readyz, /metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragrelay.gateway.auth import Svc
from ragrelay.gateway.readiness import check

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready; `checks.problems` says why"}})
def readyz(svc: Svc) -> JSONResponse:
    """Redis reachable, an orchestrator consuming events, worker heartbeats fresh."""
    result = check(
        svc.redis,
        svc.keys,
        heartbeat_dir=svc.settings.heartbeat_dir,
        max_age_s=svc.config.heartbeat_max_age_s,
        require_workers=svc.config.require_workers,
    )
    body: dict[str, Any] = {
        "status": "ready" if result.ready else "not ready",
        "checks": result.checks,
    }
    return JSONResponse(body, status_code=200 if result.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

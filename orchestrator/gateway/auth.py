"""Bearer API keys → tenant, then the tenant's rate limit. 401 / 429 from here."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from orchestrator.gateway.services import Services, services

bearer = HTTPBearer(auto_error=False, description="An API key from `ragrelay keys create`")

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="ragrelay"'}


def tenant_of(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    svc: Annotated[Services, Depends(services)],
) -> str:
    """The tenant of the request's API key, once its rate limit allows the request."""
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise HTTPException(401, "missing API key: send `Authorization: Bearer <key>`",
                            headers=UNAUTHORIZED)
    record = svc.api_keys.authenticate(creds.credentials)
    if record is None:
        raise HTTPException(401, "invalid or revoked API key", headers=UNAUTHORIZED)
    decision = svc.bucket.take(record.tenant)
    if not decision.allowed:
        raise HTTPException(429, f"rate limit of tenant {record.tenant!r} exceeded",
                            headers={"Retry-After": str(decision.retry_after_s)})
    return record.tenant


Tenant = Annotated[str, Depends(tenant_of)]
Svc = Annotated[Services, Depends(services)]

"""Bearer API keys → tenant, then the tenant's rate limit. 401 / 429 from here."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ragrelay.gateway.services import Services, services

bearer = HTTPBearer(auto_error=False, description="An API key from `ragrelay keys create`")

UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="ragrelay"'}


def tenant_for_key(svc: Services, key: str | None, *, missing: str) -> str:
    """The tenant of an API key, once its rate limit allows the request (401 / 429 if not);
    ``missing`` is the 401 message when no key was sent at all."""
    if not key:
        raise HTTPException(401, missing, headers=UNAUTHORIZED)
    record = svc.api_keys.authenticate(key)
    if record is None:
        raise HTTPException(401, "invalid or revoked API key", headers=UNAUTHORIZED)
    return admit(svc, record.tenant)


def admit(svc: Services, tenant: str) -> str:
    """``tenant`` once its rate limit allows one more request (429 if not)."""
    decision = svc.bucket.take(tenant)
    if not decision.allowed:
        raise HTTPException(
            429,
            f"rate limit of tenant {tenant!r} exceeded",
            headers={"Retry-After": str(decision.retry_after_s)},
        )
    return tenant


def tenant_of(
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    svc: Annotated[Services, Depends(services)],
) -> str:
    """The tenant of the request's bearer API key (see :func:`tenant_for_key`)."""
    key = creds.credentials if creds is not None and creds.scheme.lower() == "bearer" else None
    return tenant_for_key(svc, key, missing="missing API key: send `Authorization: Bearer <key>`")


Tenant = Annotated[str, Depends(tenant_of)]
Svc = Annotated[Services, Depends(services)]

"""/v1/users/{user_id}/context: real-time user data the retrieval worker reads, per tenant.

Written exactly as ``workers.context.RedisUserContext`` reads it: the JSON object at
``Keys.user_context(tenant, user_id)``. Users live inside their tenant's namespace, so a
tenant can neither read nor overwrite another tenant's user of the same id.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path
from pydantic import BeforeValidator

from ragrelay.gateway.auth import Svc, Tenant
from ragrelay.gateway.models import ErrorBody, UserContextView, ValidationErrorBody
from schemas import limits

router = APIRouter(prefix="/v1/users", tags=["users"])

UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@+-]+$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    404: {"model": ErrorBody, "description": "no context stored for this user"},
    413: {"model": ErrorBody, "description": "request body too large"},
    409: {"model": ErrorBody, "description": "the stored context cannot be read; PUT a new one"},
    422: {
        "model": ValidationErrorBody,
        "description": "the body is not a JSON object within the size and depth limits",
    },
    429: {"model": ErrorBody, "description": "rate limit exceeded; see Retry-After"},
}


@router.put("/{user_id}/context", response_model=UserContextView, responses=ERRORS)
def put_user_context(
    user_id: UserId,
    tenant: Tenant,
    svc: Svc,
    context: Annotated[
        dict[str, Any],
        BeforeValidator(limits.user_context),
        Body(
            description=(
                f"Any JSON object (at most {limits.MAX_USER_CONTEXT_BYTES} bytes, "
                f"{limits.MAX_JSON_DEPTH} levels deep): location, account state, ...; "
                "replaces the previous one"
            ),
            examples=[{"city": "Leeds", "plan": "pro", "open_tickets": 2}],
        ),
    ],
) -> UserContextView:
    """Replace the user's real-time context (read by retrieval's user-context source)."""
    svc.redis.set(svc.keys.user_context(tenant, user_id), json.dumps(context))
    return UserContextView(user_id=user_id, context=context)


@router.get("/{user_id}/context", response_model=UserContextView, responses=ERRORS)
def get_user_context(user_id: UserId, tenant: Tenant, svc: Svc) -> UserContextView:
    """The user's context as the workers will see it."""
    raw = svc.redis.get(svc.keys.user_context(tenant, user_id))
    if raw is None:
        raise HTTPException(404, f"no context for user {user_id}")
    try:  # written before the limits existed, or by another writer: say so, never a 500
        value = json.loads(raw)
        value = limits.user_context(value if isinstance(value, dict) else {"value": value})
    except (ValueError, RecursionError) as exc:
        raise HTTPException(
            409, f"the stored context of user {user_id} cannot be read ({exc}); PUT a new one"
        ) from exc
    return UserContextView(user_id=user_id, context=value)

"""Translate weaviate-client exceptions into ragrelay's errors, once, at the boundary.

* rejected credentials (401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED) → PermanentError;
* unavailable, timeouts, 429/5xx, connection resets → TransientError (our retry policy);
* anything else the server refuses → PermanentError.

The gRPC status is found on the exception chain: weaviate-client raises its own errors
inside ``except RpcError``, so the original call is the ``__context__``.
"""

from __future__ import annotations

import grpc  # type: ignore[import-untyped]  # grpcio ships no type hints
import httpx
from weaviate.exceptions import (
    AuthenticationFailedError,
    InsufficientPermissionsError,
    UnexpectedStatusCodeError,
    WeaviateClosedClientError,
    WeaviateConnectionError,
    WeaviateRetryError,
    WeaviateTimeoutError,
)

from bus.errors import PermanentError, RagrelayError, TransientError

_TRANSIENT_GRPC = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
}
_AUTH_GRPC = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def grpc_code(exc: BaseException) -> grpc.StatusCode | None:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, grpc.Call):
            code = cur.code()
            return code if isinstance(code, grpc.StatusCode) else None
        cur = cur.__cause__ or cur.__context__
    return None


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, UnexpectedStatusCodeError):
        status = exc.status_code
        return status if isinstance(status, int) else None
    return None


def translate(exc: BaseException, action: str) -> RagrelayError:
    """The ragrelay error for a weaviate-client exception raised while doing ``action``."""
    status = http_status(exc)
    code = grpc_code(exc)
    auth_hint = "check RAGRELAY_WEAVIATE_API_KEY and the key's permissions"
    if (
        isinstance(exc, AuthenticationFailedError | InsufficientPermissionsError)
        or status in (401, 403)
        or code in _AUTH_GRPC
    ):
        return PermanentError(f"Weaviate refused {action}: not authorised ({auth_hint}).")
    if (
        isinstance(
            exc,
            WeaviateConnectionError
            | WeaviateTimeoutError
            | WeaviateRetryError
            | WeaviateClosedClientError,
        )
        or code in _TRANSIENT_GRPC
    ):
        return TransientError(f"Weaviate unavailable during {action}: {short(exc)}")
    if status is not None and (status == 429 or status >= 500):
        return TransientError(f"Weaviate answered {status} during {action}: {short(exc)}")
    if isinstance(exc, httpx.TransportError):
        return TransientError(f"Weaviate unreachable during {action}: {short(exc)}")
    return PermanentError(f"Weaviate refused {action}: {short(exc)}")


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


__all__ = ["grpc_code", "http_status", "short", "translate"]

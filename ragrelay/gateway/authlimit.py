"""Rate limiting of failed authentication per client address: 429 before any key is checked.

Every answer ``401`` from any route (a missing, wrong or revoked API key, on ``/v1`` or the
``/ui`` pages) spends a token of the address's :class:`FailureBucket`. While the bucket holds
less than one token, *every* request from the address is refused with ``429`` and
``Retry-After`` before its key is looked at — a valid key included: answering a valid key
differently would keep the key-guessing oracle open at full speed. The operations routes
(``/healthz``, ``/readyz``, ``/metrics``) are never refused, so probes keep working.

The address is the ASGI ``client`` that uvicorn gives: the TCP peer, unless uvicorn runs with
``--proxy-headers`` and the peer is in ``--forwarded-allow-ips`` (``ragrelay serve
--forwarded-allow-ips``), when it is the one the trusted proxy forwarded (docs/gateway.md,
"Failed authentication").
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus import logging as blog
from ragrelay.gateway.ratelimit import Decision, FailureBucket

log = blog.get_logger("ragrelay.gateway")

OPERATIONS = frozenset({"/healthz", "/readyz", "/metrics"})


def client_address(scope: Scope) -> str:
    """The client's address as the server reports it (``unknown`` without one, e.g. a unix
    socket: such clients share one bucket)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def refusal_body(retry_after_s: int) -> bytes:
    return json.dumps(
        {
            "detail": "too many failed authentications from this address; "
            f"retry after {retry_after_s} s"
        }
    ).encode()


class FailedAuthLimit:
    def __init__(
        self, app: ASGIApp, bucket: FailureBucket, exempt: frozenset[str] = OPERATIONS
    ) -> None:
        self.app = app
        self.bucket = bucket
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        decision = await self._guarded(self.bucket.check, address)
        if not decision.allowed:
            await self._refuse(send, decision.retry_after_s)
            return

        async def counting_send(message: Message) -> None:
            # Counted before the 401 leaves, so the client's next request already sees it.
            if message["type"] == "http.response.start" and message["status"] == 401:
                await self._guarded(self.bucket.fail, address)
            await send(message)

        await self.app(scope, receive, counting_send)

    @staticmethod
    async def _guarded(call: Callable[[str], Awaitable[Decision]], address: str) -> Decision:
        """The bucket's answer; allowed when Redis cannot say (the routes then answer 503)."""
        try:
            return await call(address)
        except redis.RedisError as exc:
            log.warning("gateway.auth_limit_unavailable", error=str(exc))
            return Decision(True, 0)

    @staticmethod
    async def _refuse(send: Send, retry_after_s: int) -> None:
        body = refusal_body(retry_after_s)
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(retry_after_s).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

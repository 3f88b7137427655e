"""Caps on open event streams (SSE): per API key and per tenant across every gateway replica,
and per gateway process.

An open stream holds a *lease*: one member in each of two Redis sorted sets, the API key's
and the tenant's, scored by the time it expires on Redis's own clock::

    <prefix>:sse:key:<key id>      zset  {lease id: expiry ms}
    <prefix>:sse:tenant:<tenant>   zset  {lease id: expiry ms}

Admission is one Lua script: drop the expired leases, refuse if either set is full, else add
the lease to both. While the response runs, a task moves the expiry forward every third of
the lease time; when it ends — the stream finished, the client went away, an error — the
lease is removed in ``finally``. A replica that dies removes nothing, and its leases stop
counting once they expire (``sse_lease_s``), so no slot is lost for good.

The per-process cap counts this process's open streams in memory. It keeps the async Redis
pool (one connection per stream blocked in XREAD) inside its bound: docs/gateway.md,
"Limits on event streams".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass

import anyio
import redis
import redis.asyncio as aioredis
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from bus import logging as blog

log = blog.get_logger("ragrelay.gateway")

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function hold(key, id, ttl)
  redis.call('ZADD', key, now + ttl, id)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', key, last[2])  -- the set goes when its longest lease does
end
"""

# KEYS: the lease sets; ARGV[1] lease id, ARGV[2] lease ms, ARGV[2 + i] the cap of KEYS[i].
# Returns 0 when leased, else i of the first full set.
ACQUIRE = (
    _NOW_MS
    + """
local ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    return i
  end
end
for _, key in ipairs(KEYS) do
  hold(key, ARGV[1], ttl)
end
return 0
"""
)

# Re-adds a lease that vanished (e.g. Redis restarted empty): the stream is still open.
REFRESH = (
    _NOW_MS
    + """
for _, key in ipairs(KEYS) do
  hold(key, ARGV[1], tonumber(ARGV[2]))
end
return 0
"""
)

RELEASE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Lease:
    lease_id: str
    sets: tuple[str, ...]  # the sorted sets holding it


@dataclass(frozen=True)
class Admission:
    lease: Lease | None
    refused: str = ""  # why not, when ``lease`` is None (the 429 detail)


class StreamLimiter:
    def __init__(
        self,
        client: redis.Redis,
        aclient: aioredis.Redis,
        *,
        per_key: int,
        per_tenant: int,
        per_process: int,
        lease_s: float,
        prefix: str = "ragrelay",
    ) -> None:
        self.per_key = per_key
        self.per_tenant = per_tenant
        self.per_process = per_process
        self.lease_ms = int(lease_s * 1000)
        self.prefix = prefix
        self.open_here = 0  # streams this process is serving (touched on its event loop only)
        self._acquire = client.register_script(ACQUIRE)
        self._refresh = aclient.register_script(REFRESH)
        self._aclient = aclient

    def key_set(self, key_id: str) -> str:
        return f"{self.prefix}:sse:key:{key_id}"

    def tenant_set(self, tenant: str) -> str:
        return f"{self.prefix}:sse:tenant:{tenant}"

    @property
    def refresh_every_s(self) -> float:
        return self.lease_ms / 3000

    # -- across replicas (Redis) -------------------------------------------------------------
    def admit(self, tenant: str, key_id: str | None) -> Admission:
        """A lease for one more stream of ``key_id`` (when known) and ``tenant``, or why not."""
        scopes: list[tuple[str, int, str]] = []
        if key_id is not None:
            scopes.append(
                (
                    self.key_set(key_id),
                    self.per_key,
                    f"this API key already has {self.per_key} open event streams, the most allowed",
                )
            )
        scopes.append(
            (
                self.tenant_set(tenant),
                self.per_tenant,
                f"tenant {tenant!r} already has {self.per_tenant} open event streams, "
                "the most allowed",
            )
        )
        lease_id = uuid.uuid4().hex
        full = int(
            self._acquire(
                keys=[s for s, _, _ in scopes],
                args=[lease_id, self.lease_ms, *(c for _, c, _ in scopes)],
            )
        )
        if full:
            return Admission(None, scopes[full - 1][2] + "; close one or retry later")
        return Admission(Lease(lease_id, tuple(s for s, _, _ in scopes)))

    async def refresh(self, lease: Lease) -> None:
        await self._refresh(keys=list(lease.sets), args=[lease.lease_id, self.lease_ms])

    async def keep(self, lease: Lease) -> None:
        """Refresh ``lease`` every third of its time until cancelled."""
        while True:
            await asyncio.sleep(self.refresh_every_s)
            try:
                await self.refresh(lease)
            except redis.RedisError as exc:  # the next refresh may get through
                log.warning("gateway.stream_lease_refresh_failed", error=str(exc))

    async def release(self, lease: Lease) -> None:
        try:
            pipe = self._aclient.pipeline(transaction=False)
            for name in lease.sets:
                pipe.zrem(name, lease.lease_id)
            await pipe.execute()
        except redis.RedisError as exc:  # the lease expires by itself
            log.warning("gateway.stream_lease_release_failed", error=str(exc))

    # -- this process ------------------------------------------------------------------------
    def open_local(self) -> bool:
        if self.open_here >= self.per_process:
            return False
        self.open_here += 1
        return True

    def close_local(self) -> None:
        self.open_here -= 1


class LeasedEventStream(StreamingResponse):
    """An SSE response that holds its stream slots while it runs and gives them back after,
    however it ends."""

    def __init__(
        self,
        frames: AsyncGenerator[bytes, None],
        *,
        limiter: StreamLimiter,
        lease: Lease,
        retry_after_s: int,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(frames, media_type="text/event-stream", headers=headers)
        self.frames = frames
        self.limiter = limiter
        self.lease = lease
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refresher = asyncio.ensure_future(self.limiter.keep(self.lease))
        try:
            if not self.limiter.open_local():
                await self._busy(scope, receive, send)
                return
            try:
                await super().__call__(scope, receive, send)
            finally:
                self.limiter.close_local()
        finally:
            refresher.cancel()
            # Shielded: a client that went away cancels this task, and the slots must still
            # be given back (the lease expiry is only the backstop).
            with anyio.move_on_after(RELEASE_TIMEOUT_S, shield=True):
                await self.limiter.release(self.lease)
                await self.frames.aclose()  # a generator left at a `yield` ends now, not at GC
                await asyncio.wait([refresher])

    async def _busy(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = (
            f"this gateway process already serves {self.limiter.per_process} event "
            "streams, the most it serves at once; retry later"
        )
        await JSONResponse(
            {"detail": detail}, status_code=503, headers={"Retry-After": str(self.retry_after_s)}
        )(scope, receive, send)

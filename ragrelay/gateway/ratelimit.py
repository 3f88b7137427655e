"""Token buckets in Redis, refilled and spent in one Lua script each (atomic).

- :class:`TokenBucket`: requests per tenant; every authenticated request spends a token.
- :class:`FailureBucket`: failed authentications per client address; a 401 spends a token,
  and while the bucket holds less than one the address is refused outright.

The scripts read Redis's own clock (``TIME``), so several gateway replicas share one bucket
per tenant (or address) whatever their clocks say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis

TOKEN_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
end
local allowed = 0
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait_ms = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, wait_ms}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int  # whole seconds, >= 1 when refused (the Retry-After header)


def retry_after_seconds(wait_ms: int) -> int:
    return max(1, math.ceil(wait_ms / 1000))


class TokenBucket:
    def __init__(
        self, client: redis.Redis, *, rate_per_s: float, burst: int, prefix: str = "ragrelay"
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.prefix = prefix
        self._script = client.register_script(TOKEN_BUCKET)

    def key(self, tenant: str) -> str:
        return f"{self.prefix}:ratelimit:{tenant}"

    def take(self, tenant: str, cost: int = 1) -> Decision:
        allowed, wait_ms = self._script(
            keys=[self.key(tenant)], args=[self.rate_per_s, self.burst, cost]
        )
        if int(allowed):
            return Decision(True, 0)
        return Decision(False, retry_after_seconds(int(wait_ms)))


# Spend ARGV[3] tokens (never below zero) or, with a cost of 0, only look: allowed while the
# bucket holds a whole token. A look never writes, so addresses that never fail leave no key.
FAILURE_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
end
if cost > 0 then
  tokens = math.max(0, tokens - cost)
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
end
if tokens >= 1 then
  return {1, 0}
end
return {0, math.ceil((1 - tokens) * 1000 / rate)}
"""


class FailureBucket:
    """Failed authentications per client address (async: it runs in a middleware)."""

    def __init__(
        self, client: aioredis.Redis, *, per_min: float, burst: int, prefix: str = "ragrelay"
    ) -> None:
        self.rate_per_s = per_min / 60.0
        self.burst = burst
        self.prefix = prefix
        self._script = client.register_script(FAILURE_BUCKET)

    def key(self, address: str) -> str:
        return f"{self.prefix}:authfail:{address}"

    async def check(self, address: str) -> Decision:
        """Whether ``address`` may try to authenticate now (spends nothing)."""
        return await self._run(address, 0)

    async def fail(self, address: str) -> Decision:
        """Record a failed authentication of ``address``; whether it may try again now."""
        return await self._run(address, 1)

    async def _run(self, address: str, cost: int) -> Decision:
        allowed, wait_ms = await self._script(
            keys=[self.key(address)], args=[self.rate_per_s, self.burst, cost]
        )
        if int(allowed):
            return Decision(True, 0)
        return Decision(False, retry_after_seconds(int(wait_ms)))

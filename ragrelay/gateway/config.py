"""Knobs of the HTTP gateway. Env prefix ``RAGRELAY_GATEWAY_``; built at the entry point."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Async Redis connections beyond one per open event stream: the failed-authentication
# check of every request, a stream's result read and lease refresh (docs/gateway.md).
AUX_REDIS_CONNECTIONS = 16


class GatewayConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGRELAY_GATEWAY_", extra="ignore")

    rate_per_s: float = Field(10.0, gt=0, description="requests per second per tenant (refill)")
    burst: int = Field(40, ge=1, description="requests a tenant may make at once (bucket size)")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="larger bodies get 413")
    sse_block_ms: int = Field(1000, ge=10, le=30_000, description="one XREAD wait of the SSE")
    sse_keepalive_s: float = Field(15.0, gt=0, description="comment line when nothing happens")
    sse_max_s: float = Field(3600.0, gt=0, description="an events stream ends after this")
    sse_max_per_key: int = Field(20, ge=1, description="open event streams per API key (429)")
    sse_max_per_tenant: int = Field(
        100, ge=1, description="open event streams per tenant, all its keys together (429)"
    )
    sse_max_streams: int = Field(
        200,
        ge=1,
        description="open event streams of one gateway process (503); it holds at "
        "most this many + 16 async Redis connections",
    )
    sse_lease_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="a stream's slot outlives a dead replica this long "
        "(refreshed every third of it while the stream is open)",
    )
    sse_retry_after_s: int = Field(10, ge=1, description="Retry-After of a refused stream")
    auth_failures_per_min: float = Field(
        10.0, gt=0, description="failed authentications per minute per client address (refill)"
    )
    auth_failure_burst: int = Field(
        20,
        ge=1,
        description="failed authentications an address may make at once; past them "
        "every request from the address gets 429 until the bucket refills",
    )
    heartbeat_max_age_s: float = Field(30.0, gt=0, description="older = a worker is not alive")
    require_workers: bool = Field(
        True, description="readyz fails when no orchestrator is consuming the events stream"
    )
    # Browser sign-in for /ui (docs/observability.md, "Signing in from a browser").
    ui_session_ttl_s: int = Field(
        3600, ge=60, le=7 * 86_400, description="a /ui browser session lasts this long"
    )
    ui_session_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="HMAC key of /ui session cookies; unset = random per process, so every "
        "replica behind one address needs the same value",
    )
    ui_cookie_secure: bool = Field(
        False,
        description="mark the session cookie Secure even on plain http (set it behind "
        "a TLS-terminating proxy); it always is when the request is https",
    )
    ui_public_origin: str | None = Field(
        None,
        pattern=r"^https?://[^/?#\s]+$",
        description="the origin browsers see (https://host[:port]) when a proxy rewrites Host; "
        "sign-in and sign-out POSTs must come from it",
    )

    @property
    def redis_max_connections(self) -> int:
        """The bound of the gateway's async Redis pool (event streams and the auth check)."""
        return self.sse_max_streams + AUX_REDIS_CONNECTIONS

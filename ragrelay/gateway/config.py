"""Knobs of the HTTP gateway. Env prefix ``RAGRELAY_GATEWAY_``; built at the entry point."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewayConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGRELAY_GATEWAY_", extra="ignore")

    rate_per_s: float = Field(10.0, gt=0, description="requests per second per tenant (refill)")
    burst: int = Field(40, ge=1, description="requests a tenant may make at once (bucket size)")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="larger bodies get 413")
    sse_block_ms: int = Field(1000, ge=10, le=30_000, description="one XREAD wait of the SSE")
    sse_keepalive_s: float = Field(15.0, gt=0, description="comment line when nothing happens")
    sse_max_s: float = Field(3600.0, gt=0, description="an events stream ends after this")
    heartbeat_max_age_s: float = Field(30.0, gt=0, description="older = a worker is not alive")
    require_workers: bool = Field(
        True, description="readyz fails when no orchestrator is consuming the events stream"
    )

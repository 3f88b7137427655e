"""What the routes use, built once per app: Redis clients and the stores over them."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Request
from redis import Redis as SyncRedis

from bus.keys import Keys
from bus.settings import Settings
from orchestrator.admission import AdmissionLimits
from orchestrator.jobs import JobStore
from ragrelay.feedback import FeedbackStore
from ragrelay.gateway.config import GatewayConfig
from ragrelay.gateway.keys_store import ApiKeyStore
from ragrelay.gateway.ratelimit import FailureBucket, TokenBucket
from ragrelay.gateway.streams import StreamLimiter


@dataclass
class Services:
    settings: Settings
    config: GatewayConfig
    keys: Keys
    redis: SyncRedis
    aredis: aioredis.Redis
    jobs: JobStore
    api_keys: ApiKeyStore
    bucket: TokenBucket
    feedback: FeedbackStore
    streams: StreamLimiter
    auth_failures: FailureBucket

    @classmethod
    def build(
        cls, settings: Settings, config: GatewayConfig, client: SyncRedis, aclient: aioredis.Redis
    ) -> Services:
        keys = Keys(settings.key_prefix)
        return cls(
            settings=settings,
            config=config,
            keys=keys,
            redis=client,
            aredis=aclient,
            jobs=JobStore(
                client,
                keys,
                ttl_s=settings.result_ttl_s,
                admission=AdmissionLimits.from_settings(settings),
                wait_replicas=settings.redis_wait_replicas,
                wait_timeout_ms=settings.redis_wait_timeout_ms,
            ),
            api_keys=ApiKeyStore(client, prefix=settings.key_prefix),
            bucket=TokenBucket(
                client, rate_per_s=config.rate_per_s, burst=config.burst, prefix=settings.key_prefix
            ),
            feedback=FeedbackStore(client, prefix=settings.key_prefix),
            streams=StreamLimiter(
                client,
                aclient,
                per_key=config.sse_max_per_key,
                per_tenant=config.sse_max_per_tenant,
                per_process=config.sse_max_streams,
                lease_s=config.sse_lease_s,
                prefix=settings.key_prefix,
            ),
            auth_failures=FailureBucket(
                aclient,
                per_min=config.auth_failures_per_min,
                burst=config.auth_failure_burst,
                prefix=settings.key_prefix,
            ),
        )


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found

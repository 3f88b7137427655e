"""The app factory: ``create_app(settings) -> FastAPI``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from starlette.routing import Route

from bus.errors import ConfigError
from bus.redis import connect, connect_async
from bus.settings import Settings
from ragrelay.gateway import apidocs, errors
from ragrelay.gateway.authlimit import FailedAuthLimit
from ragrelay.gateway.bodylimit import BodySizeLimit
from ragrelay.gateway.config import GatewayConfig
from ragrelay.gateway.documents_config import DocumentsConfig
from ragrelay.gateway.mcp_http import McpEndpoint
from ragrelay.gateway.metrics import RequestMetrics
from ragrelay.gateway.routes_documents import router as documents_router
from ragrelay.gateway.routes_jobs import router as jobs_router
from ragrelay.gateway.routes_ops import router as ops_router
from ragrelay.gateway.routes_users import router as users_router
from ragrelay.gateway.services import Services
from ragrelay.gateway.ui import UiSecurityHeaders, gateway_ui_router

DESCRIPTION = """\
Submit ragrelay jobs, watch their trace as Server-Sent Events, read results, leave feedback
and keep per-user context. Every `/v1` route needs `Authorization: Bearer <API key>`
(`ragrelay keys create --tenant T`); a key sees only its own tenant's jobs and users.
`/ui` pages take the same header, or a browser session from the sign-in form at `/ui/login`.
"""

REDIS_REQUIRED = (
    "ragrelay serve needs Redis: set RAGRELAY_REDIS_URL (e.g. redis://127.0.0.1:6379/0) and "
    "start the workers with `ragrelay up`. The embedded mode keeps jobs and API keys in one "
    "process's memory, which the gateway cannot share with `ragrelay keys` or the workers."
)


def async_client(settings: Settings, config: GatewayConfig) -> aioredis.Redis:
    """The gateway's asyncio Redis client, on a pool of at most
    ``config.redis_max_connections``: each open event stream holds one while it waits in
    XREAD, and the per-process stream cap keeps them inside it. A request that still finds
    the pool empty waits for a connection (up to 10 s) instead of opening another."""
    return connect_async(
        settings,
        max_connections=config.redis_max_connections,
        pool_timeout_s=10,
        client_name="ragrelay-gateway",
    )


def create_app(
    settings: Settings,
    config: GatewayConfig | None = None,
    *,
    redis_client: redis.Redis | None = None,
    async_redis: aioredis.Redis | None = None,
    documents: DocumentsConfig | None = None,
) -> FastAPI:
    """The HTTP gateway over the Redis of ``settings`` (clients may be passed in)."""
    config = config or GatewayConfig()
    if (redis_client is None or async_redis is None) and settings.embedded:
        raise ConfigError(REDIS_REQUIRED)
    client = redis_client or connect(settings)
    aclient = async_redis or async_client(settings, config)
    svc = Services.build(settings, config, client, aclient)
    mcp = McpEndpoint(svc)  # /mcp: the MCP server over streamable HTTP (mcp_http.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with mcp.running():
            yield
        if async_redis is None:
            await aclient.aclose()
        if redis_client is None:
            client.close()

    app = FastAPI(
        title="ragrelay gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        debug=False,
        docs_url=None,  # served by apidocs.install: Swagger UI from the package, no CDN
        redoc_url=None,
    )
    app.state.services = svc
    app.state.documents_config = documents = documents or DocumentsConfig()
    errors.install(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=config.max_body_bytes,
        per_path={"/v1/documents": documents.max_upload_bytes},  # uploads: their own cap
    )
    app.add_middleware(FailedAuthLimit, bucket=svc.auth_failures)  # outside: before the body
    app.add_middleware(RequestMetrics)
    app.add_middleware(UiSecurityHeaders)  # CSP, nosniff, no-referrer on every /ui answer
    app.include_router(ops_router)
    app.include_router(jobs_router)
    app.include_router(users_router)
    app.include_router(documents_router)
    app.include_router(gateway_ui_router(svc))  # /ui/jobs/{id} timeline, /ui/login sign-in
    app.router.routes.append(Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]))
    apidocs.install(app)  # /docs
    return app

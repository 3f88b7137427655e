"""``/mcp``: ragrelay's MCP server over streamable HTTP, on the gateway.

The same Bearer API keys as ``/v1/*``: a request without a valid key is answered ``401``
before MCP sees it (and counts as a failed authentication, like any other route), one with a
key spends a token of its tenant's rate limit (``429``). Each tool call runs as the tenant of
*its own request's* key, and reads jobs through the same ownership check as
``GET /v1/jobs/{id}`` (``routes_jobs.owned_job``), so one tenant's call never sees another's
jobs or documents.

The MCP transport is stateless (a fresh transport per POST, no session id to pin a client to
one gateway replica); progress notifications of ``ask`` stream on the POST's own SSE answer.
DNS-rebinding protection is off: it guards cookie- or address-trusting servers on
localhost, while every request here carries a Bearer key.

The session manager lives in the gateway's lifespan (``McpEndpoint.running``): a mounted
app's own lifespan would never run. See docs/mcp.md.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from fastapi import HTTPException
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from bus.errors import IdempotencyConflict
from ragrelay.gateway import routes_documents
from ragrelay.gateway.auth import tenant_for_key
from ragrelay.gateway.documents_models import TextDocument
from ragrelay.gateway.errors import InvalidField, field_errors
from ragrelay.gateway.routes_jobs import owned_job
from ragrelay.gateway.services import Services
from ragrelay.mcp.backend import FINISHED, NOT_YOURS, JobSnapshot
from ragrelay.mcp.server import build_server
from ragrelay.mcp.settings import McpServerSettings
from schemas import JobRequest, JobResult, ScoredChunk, TraceEvent

if TYPE_CHECKING:
    from workers.ports import DocumentStore

T = TypeVar("T")
MISSING_KEY = "missing API key: send `Authorization: Bearer <key>` on every /mcp request"


def bearer_key(headers: Headers) -> str | None:
    scheme, _, key = headers.get("authorization", "").partition(" ")
    return (key.strip() or None) if scheme.lower() == "bearer" else None


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class GatewayBackend:
    """The MCP tools over the gateway's own stores (sync Redis calls run in threads)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._store: DocumentStore | None = None
        self.state: Any = None  # the gateway app's state, set by McpEndpoint on first request

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        try:
            return await anyio.to_thread.run_sync(partial(fn, *args))
        except HTTPException as exc:  # the HTTP API's reasons, as tool errors
            raise ToolError(str(exc.detail)) from exc
        except InvalidField as exc:
            raise ToolError(str(exc)) from exc

    async def submit(self, request: JobRequest) -> tuple[str, bool]:
        try:
            return await self._call(self.svc.jobs.submit, request)
        except IdempotencyConflict as exc:
            raise ToolError(str(exc)) from exc

    async def job(self, tenant: str, job_id: str, *, drive_s: float = 0.0) -> JobSnapshot:
        state, result = await self._call(owned_job, self.svc, job_id, tenant)
        return JobSnapshot(
            job_id=job_id,
            status=result.status if result else (state.status if state else "running"),
            phase=state.phase if state else None,
            iteration=state.iteration if state else None,
            result=result,
            request=state.request if state else None,
        )

    async def trace(self, tenant: str, job_id: str) -> list[TraceEvent]:
        await self._call(owned_job, self.svc, job_id, tenant)
        rows = await self._call(self.svc.jobs.trace, job_id)
        return [event for _, event in rows]

    async def follow(
        self, tenant: str, job_id: str, cursor: str
    ) -> tuple[list[TraceEvent], str, JobResult | None]:
        """New trace entries and, once it has ended, the result: non-blocking reads on the
        asyncio client (a waiting ``ask`` holds no pooled connection between polls)."""
        svc = self.svc
        if cursor == "-":
            owner = await self._call(svc.jobs.owner, job_id)
            if owner is None:
                raise ToolError(f"no job {job_id}")
            if owner != tenant:
                raise ToolError(NOT_YOURS)
        start = cursor if cursor == "-" else f"({cursor}"
        rows: Any = await svc.aredis.xrange(svc.keys.trace(job_id), min=start, count=200)
        events = [TraceEvent.model_validate_json(fields[b"event"]) for _, fields in rows]
        last = _s(rows[-1][0]) if rows else cursor
        result = None
        if not rows or any(e.type == FINISHED for e in events):
            raw = await svc.aredis.get(svc.keys.result(job_id))
            result = JobResult.model_validate_json(raw) if raw else None
        return events, last, result

    async def search(self, tenant: str, query: str, k: int) -> list[ScoredChunk]:
        return await self._call(self._search, tenant, query, k)

    def _search(self, tenant: str, query: str, k: int) -> list[ScoredChunk]:
        if self._store is None:  # the workers' store, as RAGRELAY_STORE configures it
            from workers.settings import load_worker_settings
            from workers.store import open_store

            self._store = open_store(self.svc.settings, load_worker_settings())
        return self._store.search(tenant, query, k=k)

    async def add_document(self, tenant: str, document: dict[str, Any]) -> tuple[str, str]:
        """``POST /v1/documents`` with a JSON body: the documents API's own code."""
        try:
            doc = TextDocument.model_validate(document)
        except ValidationError as exc:
            err = field_errors(exc.errors(), ())[0]
            raise ToolError(f"{err['field']}: {err['message']}") from exc
        cfg = self.state.documents_config
        item = await self._call(routes_documents.text_item, doc, cfg)
        accepted = await self._call(
            routes_documents.accept_items,
            self.state,
            self.svc,
            tenant,
            uuid.uuid4().hex,
            [item],
            cfg,
        )
        return accepted.ingest_id, item.doc_id

    async def delete_document(self, tenant: str, doc_id: str) -> tuple[bool, int, str]:
        """``DELETE /v1/documents/{doc_id}``: the documents API's own code."""
        cfg = self.state.documents_config
        done = await self._call(
            routes_documents.remove_document, self.state, self.svc, tenant, doc_id, cfg
        )
        return done.deleted, done.chunks, done.ingest_id

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class McpEndpoint:
    """The ASGI app at ``/mcp``: Bearer key first, then the MCP session manager."""

    def __init__(self, svc: Services, settings: McpServerSettings | None = None) -> None:
        self.svc = svc
        self.backend = GatewayBackend(svc)
        self.server: MCPServer = build_server(
            self.backend, settings or McpServerSettings(), self.tenant_of
        )
        self._manager: StreamableHTTPSessionManager | None = None

    async def tenant_of(self, ctx: Context) -> str:
        """The tenant of this tool call's own request's key (checked again: the endpoint
        admitted the request, this names who is calling)."""
        headers = ctx.headers
        key = bearer_key(Headers(headers=dict(headers))) if headers is not None else None
        record = await anyio.to_thread.run_sync(self.svc.api_keys.authenticate, key or "")
        if key is None or record is None:
            raise ToolError("invalid or revoked API key")
        return record.tenant

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The session manager for one run of the gateway (a new one per lifespan: the SDK's
        manager runs once)."""
        self.server.streamable_http_app(
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None
                self.backend.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            key = bearer_key(Headers(scope=scope))
            await anyio.to_thread.run_sync(
                partial(tenant_for_key, self.svc, key, missing=MISSING_KEY)
            )
        except HTTPException as exc:
            headers = dict(exc.headers or {})
            await JSONResponse({"detail": exc.detail}, exc.status_code, headers)(
                scope, receive, send
            )
            return
        if self.backend.state is None and "app" in scope:
            self.backend.state = scope["app"].state
        if self._manager is None:
            await JSONResponse({"detail": "the MCP endpoint is not running"}, 503)(
                scope, receive, send
            )
            return
        await self._manager.handle_request(scope, receive, send)


__all__ = ["GatewayBackend", "McpEndpoint"]

"""The stdio server's backend: the same ``RagrelayClient`` as ``ragrelay ask``.

Without ``RAGRELAY_REDIS_URL`` the whole cluster runs in this process (embedded): a job
advances while a tool waits on it (``ask``, or ``get_job`` for up to ``drive_s``). With it,
jobs go through Redis to the workers of ``ragrelay up``. Every call to the client runs on
one thread of its own: the embedded cluster's in-memory Redis and SQLite store stay on the
thread that made them, and the event loop never blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from bus.errors import CorruptRecord, IdempotencyConflict
from bus.settings import Settings
from ragrelay.mcp.backend import FINISHED, NOT_YOURS, JobSnapshot
from schemas import JobRequest, JobResult, ScoredChunk, TraceEvent

if TYPE_CHECKING:
    from ragrelay.client import RagrelayClient
    from workers.ports import DocumentStore
    from workers.settings import WorkerSettings

T = TypeVar("T")


class ClientBackend:
    def __init__(self, settings: Settings, workers: WorkerSettings | None = None) -> None:
        self.settings = settings
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragrelay-mcp")
        self._client: RagrelayClient | None = None
        self._store: DocumentStore | None = None

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    def _c(self) -> RagrelayClient:
        if self._client is None:
            from ragrelay.client import RagrelayClient

            self.settings.ensure_data_dir()
            self._client = RagrelayClient.from_settings(self.settings, self.workers)
        return self._client

    # -- Backend -------------------------------------------------------------------------
    async def submit(self, request: JobRequest) -> tuple[str, bool]:
        return await self._call(self._submit, request)

    async def job(self, tenant: str, job_id: str, *, drive_s: float = 0.0) -> JobSnapshot:
        return await self._call(self._job, tenant, job_id, drive_s)

    async def trace(self, tenant: str, job_id: str) -> list[TraceEvent]:
        return await self._call(self._trace, tenant, job_id)

    async def follow(
        self, tenant: str, job_id: str, cursor: str
    ) -> tuple[list[TraceEvent], str, JobResult | None]:
        return await self._call(self._follow, tenant, job_id, cursor)

    async def search(self, tenant: str, query: str, k: int) -> list[ScoredChunk]:
        return await self._call(self._search, tenant, query, k)

    async def add_document(self, tenant: str, document: dict[str, Any]) -> tuple[str, str]:
        return await self._call(self._add, tenant, document)

    async def delete_document(self, tenant: str, doc_id: str) -> tuple[bool, int, str]:
        return await self._call(self._delete, tenant, doc_id)

    def _documents(self) -> tuple[Any, Any, Callable[[Any], None]]:
        """The documents API's registry, limits and task sender, on this process's client:
        embedded, the ``ragrelay.documents`` task runs here; with Redis, on ``ingest``."""
        from bus.documents import DocumentRegistry
        from bus.keys import DOCUMENTS_TASK
        from ragrelay.gateway.documents_config import DocumentsConfig

        client = self._c()

        def send(task: Any) -> None:
            if client.settings.embedded:
                client.app.tasks[DOCUMENTS_TASK].apply(args=[task.to_dict()])
            else:
                client.app.send_task(
                    DOCUMENTS_TASK, args=[task.to_dict()], queue="ingest", task_id=task.ingest_id
                )

        registry = DocumentRegistry(client.redis, client.settings.key_prefix)
        return registry, DocumentsConfig(), send

    def _add(self, tenant: str, document: dict[str, Any]) -> tuple[str, str]:
        import uuid

        from pydantic import ValidationError

        from ragrelay.gateway import routes_documents as docs
        from ragrelay.gateway.documents_models import TextDocument
        from ragrelay.gateway.errors import InvalidField

        registry, cfg, send = self._documents()
        try:
            item = docs.text_item(TextDocument.model_validate(document), cfg)
            ingest_id = uuid.uuid4().hex
            ttl = self.settings.result_ttl_s
            docs.queue_items(registry, tenant, ingest_id, [item], cfg, ttl, send)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ToolError(f"{field}: {err['msg']}") from exc
        except InvalidField as exc:
            raise ToolError(str(exc)) from exc
        except Exception as exc:  # the documents API's HTTPException (quota): its reason
            raise ToolError(str(getattr(exc, "detail", exc))) from exc
        return ingest_id, item.doc_id

    def _delete(self, tenant: str, doc_id: str) -> tuple[bool, int, str]:
        from ragrelay.gateway import routes_documents as docs

        registry, cfg, send = self._documents()
        try:
            done = docs.queue_removal(
                registry, tenant, doc_id, cfg, self.settings.result_ttl_s, send
            )
        except Exception as exc:  # "no document X" (another tenant's id too)
            raise ToolError(str(getattr(exc, "detail", exc))) from exc
        return done.deleted, done.chunks, done.ingest_id

    def close(self) -> None:
        def shut() -> None:
            if self._store is not None:
                self._store.close()
            if self._client is not None:
                self._client.close()

        self._pool.submit(shut).result()
        self._pool.shutdown()

    # -- on the client's thread ----------------------------------------------------------
    def _submit(self, request: JobRequest) -> tuple[str, bool]:
        try:
            return self._c().submit(request)
        except IdempotencyConflict as exc:
            raise ToolError(str(exc)) from exc

    def _owned(self, tenant: str, job_id: str) -> None:
        client = self._c()
        owner = client.jobs.owner(job_id)
        if owner is None:
            result = client.result(job_id)  # embedded: finished jobs are kept on disk
            owner = result.tenant if result is not None else None
        if owner is None:
            raise ToolError(f"no job {job_id}")
        if owner != tenant:
            raise ToolError(NOT_YOURS)

    def _job(self, tenant: str, job_id: str, drive_s: float) -> JobSnapshot:
        self._owned(tenant, job_id)
        client = self._c()
        if drive_s > 0 and client.settings.embedded:
            from ragrelay.client import JobTimeout

            with suppress(JobTimeout):
                client.wait(job_id, timeout_s=drive_s)  # runs the in-process cluster
        try:
            loaded = client.jobs.load(job_id)
            result = client.result(job_id)
        except CorruptRecord as bad:
            raise ToolError(f"the record of job {job_id} cannot be read ({bad.reason})") from bad
        state = loaded[0] if loaded else None
        if state is None and result is None:
            raise ToolError(f"no job {job_id}")
        return JobSnapshot(
            job_id=job_id,
            status=result.status if result else (state.status if state else "running"),
            phase=state.phase if state else None,
            iteration=state.iteration if state else None,
            result=result,
            request=state.request if state else None,
        )

    def _follow(
        self, tenant: str, job_id: str, cursor: str
    ) -> tuple[list[TraceEvent], str, JobResult | None]:
        if cursor == "-":
            self._owned(tenant, job_id)
        client = self._c()
        if client.settings.embedded:
            from ragrelay.client import JobTimeout

            with suppress(JobTimeout):
                client.wait(job_id, timeout_s=0.05)  # runs the in-process cluster
        rows = client.jobs.trace(job_id, after=cursor)
        events = [event for _, event in rows]
        done = not rows or any(e.type == FINISHED for e in events)
        return events, rows[-1][0] if rows else cursor, client.result(job_id) if done else None

    def _trace(self, tenant: str, job_id: str) -> list[TraceEvent]:
        self._owned(tenant, job_id)
        return self._c().trace(job_id)

    def _search(self, tenant: str, query: str, k: int) -> list[ScoredChunk]:
        if self._store is None:
            from workers.settings import load_worker_settings
            from workers.store import open_store

            self.settings.ensure_data_dir()
            self._store = open_store(self.settings, self.workers or load_worker_settings())
        return self._store.search(tenant, query, k=k)

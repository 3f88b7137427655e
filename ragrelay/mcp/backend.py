"""What the MCP tools need from ragrelay, whatever carries them: a ``Backend``.

Two implementations, both thin over code that already serves the CLI and the HTTP API:
``ragrelay.mcp.local.ClientBackend`` (the ``RagrelayClient`` of ``ragrelay ask``: embedded
or on Redis) for stdio, and ``ragrelay.gateway.mcp_http.GatewayBackend`` (the gateway's
job store and ownership checks) for ``/mcp``. Every method takes the caller's tenant and
refuses a job of another tenant with the HTTP API's reason; failures the caller can act on
are ``mcp``'s ``ToolError``, which reaches the client as ``isError`` with the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from schemas import JobRequest, JobResult, ScoredChunk, TraceEvent
from schemas.jobs import JobStatus

NOT_YOURS = "this job belongs to another tenant"
FINISHED = "job.finished"


@dataclass(frozen=True)
class JobSnapshot:
    job_id: str
    status: JobStatus
    phase: str | None = None
    iteration: int | None = None
    result: JobResult | None = None
    request: JobRequest | None = None


class Backend(Protocol):
    async def submit(self, request: JobRequest) -> tuple[str, bool]:
        """``(job_id, created)``; the same idempotency key never makes two jobs."""
        ...

    async def job(self, tenant: str, job_id: str, *, drive_s: float = 0.0) -> JobSnapshot:
        """The job as it is now (``drive_s``: how long an embedded cluster may run it)."""
        ...

    async def trace(self, tenant: str, job_id: str) -> list[TraceEvent]: ...

    async def follow(
        self, tenant: str, job_id: str, cursor: str
    ) -> tuple[list[TraceEvent], str, JobResult | None]:
        """The trace events after ``cursor`` (``"-"``: from the start), the new cursor, and
        the result once the job has ended. Cheap enough to call every few milliseconds (an
        embedded cluster runs the job meanwhile)."""
        ...

    async def search(self, tenant: str, query: str, k: int) -> list[ScoredChunk]:
        """The tenant's documents only: the store is searched within ``tenant``."""
        ...

    async def add_document(self, tenant: str, document: dict[str, Any]) -> tuple[str, str]:
        """Queue one JSON text document (the fields of ``POST /v1/documents``' JSON body)
        for the tenant: ``(ingest_id, doc_id)``."""
        ...

    async def delete_document(self, tenant: str, doc_id: str) -> tuple[bool, int, str]:
        """Delete the tenant's document: ``(confirmed, chunks, ingest_id)``; another
        tenant's doc id is "no document"."""
        ...

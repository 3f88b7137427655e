"""Retrieval: one source for one rewrite. Internal documents, user context, the web, or the
tenant's MCP servers (``workers/mcp_sources/``)."""

from __future__ import annotations

import json

from schemas import Chunk, RetrievalResult, RetrievalTask, ScoredChunk
from workers.ports import Deps


def handle(msg: RetrievalTask, deps: Deps) -> RetrievalResult:
    notes: list[str] = []
    if msg.source == "internal":
        hits = deps.store.search(msg.tenant, msg.query, k=msg.k)
        if not hits and _holds_nothing(msg.tenant, deps):
            notes.append(empty_tenant_note(msg.tenant))
    elif msg.source == "user_context":
        hits = _user_context(msg, deps)
    elif msg.source == "mcp":
        hits, failed = deps.mcp.search(
            msg.tenant, msg.query, k=msg.k, deadline_at=msg.limits.deadline_at or None
        )
        notes += failed  # a server that failed or timed out: the job says it is degraded
    else:
        hits = deps.web.search(msg.query, k=min(msg.k, 10)) if deps.web.enabled else []
    return RetrievalResult(
        job_id=msg.job_id,
        step_id=msg.step_id,
        source=msg.source,
        query=msg.query,
        hits=hits,
        notes=notes,
    )


def empty_tenant_note(tenant: str) -> str:
    """What a job's result says when its tenant has no documents (a mistyped ``--tenant``?)."""
    return (
        f"tenant {tenant!r} holds no documents: nothing to retrieve from "
        f"(ingest some with `ragrelay ingest PATH --tenant {tenant}`, or check the name)"
    )


def _holds_nothing(tenant: str, deps: Deps) -> bool:
    try:
        return deps.store.count(tenant) == 0
    except Exception:  # a store that cannot count says nothing rather than fail the step
        return False


def _user_context(msg: RetrievalTask, deps: Deps) -> list[ScoredChunk]:
    if not msg.user_id:
        return []
    context = deps.user_context.get(msg.tenant, msg.user_id)
    if not context:
        return []
    lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in context.items()]
    chunk = Chunk(
        chunk_id=f"user:{msg.user_id}#0",
        doc_id=f"user:{msg.user_id}",
        title=f"Current data for user {msg.user_id}",
        text=". ".join(lines) + ".",
        source="user_context",
    )
    return [ScoredChunk(chunk=chunk, score=1.0, rank=1, retriever="user_context")]

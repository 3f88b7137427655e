"""Indexing: chunk a batch of documents and upsert them into the tenant's store."""

from __future__ import annotations

from bus.errors import PermanentError
from schemas import Chunk, IngestResult, IngestTask, Usage
from workers.ports import Deps
from workers.providers.contextual import Contextualizer, contextualize_document
from workers.store.batch import PartialBatchError
from workers.store.chunking import chunk_document

NEEDS_CLAUDE = (
    "contextual chunks need Claude: set RAGRELAY_ANTHROPIC_API_KEY on the ingest "
    "workers (offline, every chunk is already indexed with its title and section)"
)


def handle(msg: IngestTask, deps: Deps) -> IngestResult:
    usage = Usage()
    contextualized = 0
    if msg.contextualize:
        chunks, usage, contextualized = _contextualized(msg, deps)
    else:
        chunks = [chunk for doc in msg.documents for chunk in chunk_document(doc)]
    doc_ids = list(dict.fromkeys(doc.doc_id for doc in msg.documents))
    deps.store.delete_documents(msg.tenant, doc_ids)  # re-ingest replaces, never duplicates
    failed: list[str] = []
    written = len(chunks)
    if chunks:
        try:
            deps.store.upsert(msg.tenant, chunks)
        except PartialBatchError as exc:  # the good chunks are stored; list the bad ones
            written = exc.written
            failed = [f"{f.chunk_id or '#' + str(f.index)}: {f.reason}" for f in exc.failures]
    return IngestResult(
        run_id=msg.run_id,
        batch=msg.batch,
        documents=len(doc_ids),
        chunks=written,
        failed_chunks=failed,
        contextualized=contextualized,
        usage=usage,
    )


def _contextualized(msg: IngestTask, deps: Deps) -> tuple[list[Chunk], Usage, int]:
    """Each document's chunks with a context written by the model (the document cached)."""
    provider = deps.provider
    if not callable(getattr(provider, "contextualize", None)):
        raise PermanentError(NEEDS_CLAUDE)
    contextualizer: Contextualizer = provider  # type: ignore[assignment]
    chunks: list[Chunk] = []
    usage = Usage()
    count = 0
    for doc in msg.documents:
        done = contextualize_document(contextualizer, doc, chunk_document(doc))
        chunks += done.chunks
        usage = usage + done.usage
        count += len(done.chunks) - done.skipped
    return chunks, usage, count

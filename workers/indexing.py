"""Indexing: chunk a batch of documents and upsert them into the tenant's store."""

from __future__ import annotations

from schemas import IngestResult, IngestTask
from workers.ports import Deps
from workers.store.chunking import chunk_document


def handle(msg: IngestTask, deps: Deps) -> IngestResult:
    chunks = [chunk for doc in msg.documents for chunk in chunk_document(doc)]
    doc_ids = list(dict.fromkeys(doc.doc_id for doc in msg.documents))
    deps.store.delete_documents(msg.tenant, doc_ids)  # re-ingest replaces, never duplicates
    if chunks:
        deps.store.upsert(msg.tenant, chunks)
    return IngestResult(run_id=msg.run_id, batch=msg.batch, documents=len(doc_ids),
                        chunks=len(chunks))

"""Indexing: chunk a batch of documents and upsert them into the tenant's store."""

from __future__ import annotations

from schemas import IngestResult, IngestTask
from workers.ports import Deps
from workers.store.batch import PartialBatchError
from workers.store.chunking import chunk_document


def handle(msg: IngestTask, deps: Deps) -> IngestResult:
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
    return IngestResult(run_id=msg.run_id, batch=msg.batch, documents=len(doc_ids),
                        chunks=written, failed_chunks=failed)

"""The documents ingest: uploaded files and texts in, deletions out, one outcome per file.

Each file is parsed in an isolated child (``workers.parsing``), chunked by the same
``chunk_document`` as ``ragrelay ingest`` and written with ``replace_chunks`` (one
transaction on the embedded store: a search sees the old chunks or the new, never half of
each). The same bytes under the same doc id are a no-op (content hash). A file that cannot
be read gets a ``skipped`` outcome with the reason; the others proceed. A redelivered task
resumes after the outcomes already recorded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from bus.documents import DocumentRegistry, now
from bus.task import TRANSIENT
from schemas import (
    Chunk,
    Document,
    DocumentItem,
    DocumentRecord,
    DocumentsTask,
    FileOutcome,
    IngestRecord,
)
from workers.parsing import ParseLimits, UnreadableFile, parse_isolated, to_document
from workers.ports import DocumentStore
from workers.store.batch import PartialBatchError
from workers.store.chunking import chunk_document
from workers.store.embedded import EmbeddedStore

OK = ("indexed", "replaced", "unchanged", "renamed", "deleted")


def replace_chunks(store: DocumentStore, tenant: str, chunks: Sequence[Chunk]) -> int:
    """Replace the documents of ``chunks`` by them: atomically where the store can (the
    embedded store's one transaction); elsewhere delete, then upsert (a short window)."""
    if isinstance(store, EmbeddedStore):
        return store.replace_documents(tenant, chunks)
    store.delete_documents(tenant, list(dict.fromkeys(c.doc_id for c in chunks)))
    return store.upsert(tenant, chunks)


def handle(
    msg: DocumentsTask, store: DocumentStore, registry: DocumentRegistry, *, ttl_s: int
) -> IngestRecord:
    record = registry.ingest(msg.ingest_id) or IngestRecord(
        ingest_id=msg.ingest_id, tenant=msg.tenant, created_at=now()
    )
    record.total = len(msg.delete) + len(msg.items)
    record.status = "running"
    registry.save_ingest(record, ttl_s=ttl_s)
    registry.event(msg.ingest_id, "status", record.model_dump_json(exclude={"files"}), ttl_s=ttl_s)
    limits = ParseLimits(
        max_bytes=msg.max_file_bytes,
        max_pages=msg.max_pages,
        timeout_s=msg.parse_timeout_s,
        ocr=msg.ocr,
    )
    done = len(record.files)  # outcomes recorded before a redelivery
    for i, doc_id in enumerate(msg.delete):
        if i >= done:
            registry.outcome(record, _delete(msg.tenant, doc_id, store, registry), ttl_s=ttl_s)
    for j, item in enumerate(msg.items):
        if len(msg.delete) + j < done:
            continue
        try:
            outcome = _ingest(msg, item, store, registry, limits)
        except TRANSIENT:
            raise  # the store or Redis is away: the task is retried, resuming here
        except Exception as exc:  # one file's unforeseen failure must not fail the others
            outcome = FileOutcome(
                name=item.name,
                doc_id=item.doc_id,
                outcome="failed",
                reason=f"{type(exc).__name__}: {str(exc)[:300]}",
            )
        finally:
            if item.blob_key:
                registry.drop_blob(item.blob_key)
        registry.outcome(record, outcome, ttl_s=ttl_s)
    good = sum(f.outcome in OK for f in record.files)
    record.status = "succeeded" if good == len(record.files) else "partial" if good else "failed"
    record.finished_at = now()
    registry.save_ingest(record, ttl_s=ttl_s)
    registry.event(msg.ingest_id, "done", record.to_json(), ttl_s=ttl_s)
    return record


def _delete(
    tenant: str, doc_id: str, store: DocumentStore, registry: DocumentRegistry
) -> FileOutcome:
    removed = store.delete_documents(tenant, [doc_id])
    old = registry.remove(tenant, doc_id)
    if old is None and removed == 0:
        return FileOutcome(doc_id=doc_id, outcome="skipped", reason="no such document")
    return FileOutcome(
        doc_id=doc_id, name=old.name if old else "", outcome="deleted", chunks=removed
    )


def _ingest(
    msg: DocumentsTask,
    item: DocumentItem,
    store: DocumentStore,
    registry: DocumentRegistry,
    limits: ParseLimits,
) -> FileOutcome:
    def skipped(reason: str) -> FileOutcome:
        return FileOutcome(name=item.name, doc_id=item.doc_id, outcome="skipped", reason=reason)

    if item.refused:
        return skipped(item.refused)
    old = registry.get(msg.tenant, item.doc_id)
    if old is not None and old.content_hash == item.content_hash:
        return FileOutcome(
            name=item.name, doc_id=item.doc_id, outcome="unchanged", chunks=old.chunks
        )
    if item.rename_from and isinstance(store, EmbeddedStore):
        moved = _rename(msg, item, item.rename_from, store, registry)
        if moved is not None:
            return moved
    pages, fmt = 0, "text"
    if item.text is not None:
        doc = Document(
            doc_id=item.doc_id,
            title=item.title or item.doc_id,
            text=item.text,
            source=item.source,
            metadata=item.metadata,
        )
    else:
        try:
            doc, pages, fmt = _parse_blob(item, registry, limits)
        except UnreadableFile as exc:
            return skipped(exc.reason)
    chunks = chunk_document(doc)
    if not chunks:
        return skipped("no text to index")
    try:
        written = replace_chunks(store, msg.tenant, chunks)
    except PartialBatchError as exc:  # never leave a document half-written
        store.delete_documents(msg.tenant, [item.doc_id])
        registry.remove(msg.tenant, item.doc_id)
        reasons = "; ".join(f.reason for f in exc.failures[:3])
        return FileOutcome(
            name=item.name, doc_id=item.doc_id, outcome="failed", reason=f"not stored: {reasons}"
        )
    registry.put(
        DocumentRecord(
            doc_id=item.doc_id,
            tenant=msg.tenant,
            title=doc.title,
            source=item.source,
            name=item.name,
            format=fmt,
            content_hash=item.content_hash,
            size=item.size,
            chunks=written,
            pages=pages,
            metadata=item.metadata,
            ingested_at=now(),
            ingest_id=msg.ingest_id,
        )
    )
    if item.rename_from and item.rename_from != item.doc_id:  # a rename re-embedded
        store.delete_documents(msg.tenant, [item.rename_from])
        registry.remove(msg.tenant, item.rename_from)
    return FileOutcome(
        name=item.name,
        doc_id=item.doc_id,
        outcome="replaced" if old is not None else "indexed",
        reason=f"renamed from {item.rename_from} (re-embedded)" if item.rename_from else "",
        chunks=written,
        page_count=pages,
    )


def _rename(
    msg: DocumentsTask,
    item: DocumentItem,
    old: str,
    store: EmbeddedStore,
    registry: DocumentRegistry,
) -> FileOutcome | None:
    """Move the chunks of ``old`` to ``item.doc_id`` (no parse, no embedding); None when
    there is nothing to move (then the file is ingested as new)."""
    moved = store.rename_document(msg.tenant, old, item.doc_id, metadata=item.metadata)
    if not moved:
        return None
    prev = registry.remove(msg.tenant, old)
    registry.put(
        DocumentRecord(
            doc_id=item.doc_id,
            tenant=msg.tenant,
            title=prev.title if prev else "",
            source=item.source,
            name=item.name,
            format=prev.format if prev else "",
            content_hash=item.content_hash,
            size=item.size,
            chunks=moved,
            pages=prev.pages if prev else 0,
            metadata=item.metadata,
            ingested_at=now(),
            ingest_id=msg.ingest_id,
        )
    )
    return FileOutcome(
        name=item.name,
        doc_id=item.doc_id,
        outcome="renamed",
        reason=f"renamed from {old}; nothing re-embedded",
        chunks=moved,
    )


def _parse_blob(
    item: DocumentItem, registry: DocumentRegistry, limits: ParseLimits
) -> tuple[Document, int, str]:
    if item.blob_key is None:
        raise UnreadableFile("neither text nor file bytes were sent")
    with tempfile.TemporaryDirectory(prefix="ragrelay-parse-") as tmp:
        path = Path(tmp) / "upload"
        if registry.read_blob(item.blob_key, path) < 0:
            raise UnreadableFile("the uploaded bytes expired before a worker read them")
        parsed = parse_isolated(path, limits, name=item.name or item.doc_id)
    metadata = {**item.metadata, "format": parsed.kind}
    doc = to_document(
        parsed, doc_id=item.doc_id, title=item.title, source=item.source, metadata=metadata
    )
    return doc, parsed.pages, parsed.kind

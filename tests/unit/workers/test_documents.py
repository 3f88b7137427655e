"""workers.documents.handle on the embedded store with a fake Redis registry: outcomes per
file, the content-hash no-op, one bad file not failing the others, and resuming after a
redelivery without doing a file twice."""

from __future__ import annotations

import io
from pathlib import Path

import fakeredis
import pytest

from bus.documents import DocumentRegistry
from schemas import DocumentItem, DocumentsTask, FileOutcome, IngestRecord
from workers import documents
from workers.embeddings import HashingEmbedder
from workers.store.embedded import EmbeddedStore


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "chunks.sqlite3", embedder=HashingEmbedder())


def text_item(doc_id: str, text: str, digest: str) -> DocumentItem:
    return DocumentItem(doc_id=doc_id, text=text, content_hash=digest)


def test_outcomes_no_op_and_a_bad_file_among_good_ones(
    store: EmbeddedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = DocumentRegistry(fakeredis.FakeRedis())
    key = registry.blob_key("i1", 1)
    registry.put_blob(key, io.BytesIO(b"# Title\nsome words here"), ttl_s=60)
    items = [
        text_item("a", "Alpha text about apples.", "h-a"),
        DocumentItem(doc_id="b.md", name="b.md", blob_key=key, content_hash="h-b"),
        DocumentItem(doc_id="gone", name="gone.pdf", blob_key="nope", content_hash="h-c"),
        DocumentItem(doc_id="big", name="big.pdf", refused="too big", content_hash="h-d"),
    ]
    first = documents.handle(
        DocumentsTask(ingest_id="i1", tenant="t", items=items), store, registry, ttl_s=60
    )
    assert [(f.doc_id, f.outcome) for f in first.files] == [
        ("a", "indexed"),
        ("b.md", "indexed"),
        ("gone", "skipped"),
        ("big", "skipped"),
    ]
    assert "expired" in first.files[2].reason and first.status == "partial"
    assert registry.get("t", "b.md").format == "markdown"  # type: ignore[union-attr]
    assert registry.redis.exists(key) == 0  # the blob is dropped once read

    again = documents.handle(
        DocumentsTask(ingest_id="i2", tenant="t", items=[items[0]]), store, registry, ttl_s=60
    )
    assert again.files[0].outcome == "unchanged" and again.status == "succeeded"

    real = documents.replace_chunks

    def explode(store_: object, tenant: str, chunks: list[object]) -> int:
        if any(getattr(c, "doc_id", "") == "boom" for c in chunks):
            raise ValueError("the store did not like this")
        return real(store_, tenant, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(documents, "replace_chunks", explode)
    mixed = documents.handle(
        DocumentsTask(
            ingest_id="i3",
            tenant="t",
            items=[text_item("boom", "Bad one.", "x"), text_item("c", "Cherry text.", "y")],
        ),
        store,
        registry,
        ttl_s=60,
    )
    assert [(f.doc_id, f.outcome) for f in mixed.files] == [("boom", "failed"), ("c", "indexed")]
    assert "ValueError: the store did not like this" in mixed.files[0].reason


def test_a_redelivered_task_resumes_after_the_recorded_outcomes(store: EmbeddedStore) -> None:
    registry = DocumentRegistry(fakeredis.FakeRedis())
    task = DocumentsTask(
        ingest_id="r1",
        tenant="t",
        items=[text_item("a", "Alpha.", "1"), text_item("b", "Beta.", "2")],
    )
    partial = IngestRecord(ingest_id="r1", tenant="t")
    partial.files.append(FileOutcome(doc_id="a", outcome="indexed"))
    registry.save_ingest(partial, ttl_s=60)  # as if the worker died after the first file
    done = documents.handle(task, store, registry, ttl_s=60)
    assert [f.doc_id for f in done.files] == ["a", "b"]
    assert store.count("t") == 1  # "a" was not written again by this delivery

"""The one contract every DocumentStore meets (workers.ports.DocumentStore).

Runs on: the embedded store (a SQLite file in a tmp dir); the Weaviate store against the
loopback fake (tests/fakes/weaviate_server.py, driven by the real weaviate-client); and a
real Weaviate when ``RAGRELAY_WEAVIATE_URL`` is set (plus ``RAGRELAY_WEAVIATE_GRPC_PORT``
and ``RAGRELAY_WEAVIATE_API_KEY`` as needed) — each test then uses its own collection and
drops it afterwards. Without that variable the real-Weaviate case is not generated.

The contract is behaviour both kinds of store can meet: results are best-first with ranks
1..n; a keyword that only one document contains finds that document first; search never
returns another tenant's chunks or deleted ones (a hybrid store may also return weaker,
vector-only neighbours, so "no results" is asserted only where nothing can match).
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas import Chunk
from tests.fakes.embedder import HashingEmbedder
from workers.ports import DocumentStore, Embedder
from workers.settings import WeaviateSettings
from workers.store.batch import PartialBatchError
from workers.store.embedded import EmbeddedStore


def _embedder() -> Embedder:
    """The project's deterministic hashing embedder when present, else the test fake."""
    try:
        project = importlib.import_module("workers.embeddings")
    except ImportError:
        return HashingEmbedder()
    embedder: Embedder = project.HashingEmbedder()
    return embedder


REAL_URL = os.environ.get("RAGRELAY_WEAVIATE_URL")
STORES = ["embedded", "weaviate-loopback"] + (["weaviate-real"] if REAL_URL else [])


def _embedded(tmp_path: Path) -> DocumentStore:
    """The embedded store, given the test embedder when its constructor takes one."""
    factory: Any = EmbeddedStore  # its signature is gaining ``embedder=``; work with both
    if "embedder" in inspect.signature(EmbeddedStore).parameters:
        store: DocumentStore = factory(tmp_path / "chunks.sqlite3", embedder=_embedder())
    else:
        store = factory(tmp_path / "chunks.sqlite3")
    return store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DocumentStore]:
    kind = request.param
    if kind == "embedded":
        s = _embedded(tmp_path)
        yield s
        s.close()
        return
    from workers.store.weaviate import WeaviateStore

    if kind == "weaviate-loopback":
        from tests.fakes.weaviate_server import FakeWeaviate

        with FakeWeaviate() as fake:
            settings = WeaviateSettings(url=fake.url, grpc_port=fake.grpc_port)
            ws = WeaviateStore(settings, _embedder(), batch_size=100)
            yield ws
            ws.close()
        return
    # A real Weaviate: settings from the environment, a throwaway collection per test.
    settings = WeaviateSettings(collection=f"RagrelayContract{uuid.uuid4().hex[:10]}")
    ws = WeaviateStore(settings, _embedder(), batch_size=100)
    try:
        yield ws
    finally:
        ws.drop_collection()


# --- data -----------------------------------------------------------------------------------

DOCS: dict[str, tuple[str, str, list[str], dict[str, Any]]] = {
    # doc_id: (title, source, chunk texts, metadata)
    "volcano": (
        "Volcanoes",
        "wiki",
        [
            "Basaltic lava flows from shield volcanoes such as Mauna Loa.",
            "Pyroclastic surges travel faster than lava flows.",
        ],
        {"lang": "en", "year": 2021},
    ),
    "glacier": (
        "Glaciers",
        "wiki",
        ["Glaciers carve fjords and moraines over millennia."],
        {"lang": "en", "year": 2019},
    ),
    "cuisine": (
        "Cuisine",
        "blog",
        ["Risotto needs arborio rice, broth and patience.", "Saffron gives risotto its colour."],
        {"lang": "it", "year": 2021, "tags": ["food", "rice"]},
    ),
}


def chunks_of(doc_id: str, *, suffix: str = "") -> list[Chunk]:
    title, source, texts, meta = DOCS[doc_id]
    return [
        Chunk(
            chunk_id=f"{doc_id}#{i}",
            doc_id=doc_id,
            title=title,
            text=text + suffix,
            source=source,
            chunk_index=i,
            metadata=meta,
        )
        for i, text in enumerate(texts)
    ]


def all_chunks() -> list[Chunk]:
    return [c for d in DOCS for c in chunks_of(d)]


def doc_ids(hits: list[Any]) -> list[str]:
    return [h.chunk.doc_id for h in hits]


# --- the contract ---------------------------------------------------------------------------


def test_inserted_chunks_come_back_whole_and_best_first(store: DocumentStore) -> None:
    assert store.upsert("acme", all_chunks()) == 5
    assert store.count("acme") == 5

    hits = store.search("acme", "pyroclastic surges", k=3)

    assert hits, "a keyword only one chunk contains must find it"
    top = hits[0]
    assert top.chunk == chunks_of("volcano")[1]  # every field round-trips, metadata included
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    assert len(hits) <= 3


def test_search_returns_at_most_k(store: DocumentStore) -> None:
    store.upsert("acme", all_chunks())
    assert len(store.search("acme", "lava risotto glaciers rice", k=2)) <= 2
    assert len(store.search("acme", "lava risotto glaciers rice", k=1)) == 1


def test_delete_by_document_removes_all_its_chunks_and_only_them(store: DocumentStore) -> None:
    store.upsert("acme", all_chunks())

    assert store.delete_documents("acme", ["volcano"]) == 2

    assert store.count("acme") == 3
    assert "volcano" not in doc_ids(store.search("acme", "lava flows volcanoes", k=10))
    assert doc_ids(store.search("acme", "saffron risotto", k=1)) == ["cuisine"]
    assert store.delete_documents("acme", ["volcano", "no-such-doc"]) == 0


def test_reingest_is_idempotent_and_replaces_text(store: DocumentStore) -> None:
    store.upsert("acme", all_chunks())
    store.upsert("acme", all_chunks())
    assert store.count("acme") == 5

    store.upsert("acme", chunks_of("glacier", suffix=" Cirques and aretes too."))

    assert store.count("acme") == 5
    hits = store.search("acme", "cirques aretes", k=1)
    assert hits[0].chunk.chunk_id == "glacier#0"
    assert hits[0].chunk.text.endswith("Cirques and aretes too.")


def test_filters_match_doc_id_source_and_metadata_exactly(store: DocumentStore) -> None:
    store.upsert("acme", all_chunks())
    query = "lava glaciers risotto rice fjords saffron"

    assert set(doc_ids(store.search("acme", query, k=10, filters={"doc_id": "glacier"}))) == {
        "glacier"
    }
    assert set(doc_ids(store.search("acme", query, k=10, filters={"source": "blog"}))) == {
        "cuisine"
    }
    assert set(doc_ids(store.search("acme", query, k=10, filters={"lang": "en"}))) == {
        "volcano",
        "glacier",
    }
    both = store.search("acme", query, k=10, filters={"year": 2021, "lang": "en"})
    assert set(doc_ids(both)) == {"volcano"}
    tagged = store.search("acme", query, k=10, filters={"tags": ["food", "rice"]})
    assert set(doc_ids(tagged)) == {"cuisine"}
    assert store.search("acme", query, k=10, filters={"lang": "de"}) == []
    assert store.search("acme", query, k=10, filters={"source": "wiki", "lang": "it"}) == []


def test_tenants_never_see_each_other(store: DocumentStore) -> None:
    store.upsert("tenant-a", chunks_of("volcano"))
    secret = Chunk(chunk_id="volcano#0", doc_id="volcano", text="Tenant B secret lava notes.")
    store.upsert("tenant-b", [secret])  # the same chunk_id in another tenant is another chunk

    assert store.count("tenant-a") == 2
    assert store.count("tenant-b") == 1
    assert all(
        h.chunk.text != secret.text for h in store.search("tenant-a", "secret lava notes", k=10)
    )
    b_hits = store.search("tenant-b", "lava flows volcanoes", k=10)
    assert [h.chunk.text for h in b_hits] == [secret.text]

    assert store.delete_documents("tenant-b", ["volcano"]) == 1
    assert store.count("tenant-a") == 2


def test_similar_tenant_names_are_different_tenants(store: DocumentStore) -> None:
    store.upsert("acme.eu", chunks_of("glacier"))
    store.upsert("acme_eu", chunks_of("cuisine"))
    assert store.count("acme.eu") == 1
    assert store.count("acme_eu") == 2
    assert set(doc_ids(store.search("acme.eu", "glaciers risotto", k=10))) == {"glacier"}


def test_empty_store_and_unknown_tenant_answer_nothing(store: DocumentStore) -> None:
    assert store.count("nobody") == 0
    assert store.search("nobody", "lava", k=5) == []
    assert store.delete_documents("nobody", ["volcano"]) == 0
    assert store.upsert("nobody", []) == 0
    store.upsert("acme", all_chunks())
    assert store.search("acme", "   ", k=5) == []
    assert store.search("nobody", "lava", k=5) == []


def _big_batch(n: int) -> list[Chunk]:
    return [
        Chunk(
            chunk_id=f"doc{i // 5}#{i % 5}",
            doc_id=f"doc{i // 5}",
            text=f"Batch chunk {i} about topic{i % 7} and item{i}.",
            chunk_index=i % 5,
            metadata={"n": i},
        )
        for i in range(n)
    ]


BadMaker = Callable[[Chunk], Chunk]
BAD: dict[int, BadMaker] = {
    7: lambda c: c.model_copy(update={"text": "   "}),
    250: lambda c: c.model_copy(update={"metadata": {"n": {1, 2}}}),  # a set is not JSON
    499: lambda c: c.model_copy(update={"metadata": {"n": float("nan")}}),
}


def test_large_batch_writes_good_chunks_and_lists_each_bad_one(store: DocumentStore) -> None:
    batch = _big_batch(500)
    for index, spoil in BAD.items():
        batch[index] = spoil(batch[index])

    with pytest.raises(PartialBatchError) as info:
        store.upsert("acme", batch)

    err = info.value
    assert [f.index for f in err.failures] == sorted(BAD)
    assert err.failed_chunk_ids == [batch[i].chunk_id for i in sorted(BAD)]
    assert all(f.reason for f in err.failures)
    assert err.written == 497
    assert store.count("acme") == 497
    assert doc_ids(store.search("acme", "item123", k=1)) == ["doc24"]


def test_same_chunk_twice_in_one_batch_keeps_the_last(store: DocumentStore) -> None:
    first, last = chunks_of("glacier")[0], chunks_of("glacier", suffix=" Updated moraine.")[0]
    store.upsert("acme", [first, last])
    assert store.count("acme") == 1
    assert store.search("acme", "updated moraine", k=1)[0].chunk.text == last.text


# --- the documents API's path (workers/documents.py) on every store -------------------------


def test_replacing_a_document_leaves_no_stale_chunk(store: DocumentStore) -> None:
    from workers.documents import replace_chunks

    store.upsert("acme", all_chunks())
    shorter = chunks_of("volcano")[:1]
    shorter[0] = shorter[0].model_copy(update={"text": "Obsidian forms when lava cools fast."})
    assert replace_chunks(store, "acme", shorter) == 1
    assert store.count("acme") == 4
    hits = store.search("acme", "pyroclastic surges", k=10)
    assert "volcano#1" not in [h.chunk.chunk_id for h in hits]


def test_page_and_section_survive_the_store_into_the_citation(store: DocumentStore) -> None:
    from schemas import Citation

    chunk = chunks_of("glacier")[0].model_copy(
        update={"metadata": {"page": 7, "section": "Landforms > Fjords", "lang": "en"}}
    )
    store.upsert("acme", [chunk])
    hit = store.search("acme", "fjords moraines", k=1)[0]
    cite = Citation.of(hit.chunk)
    assert (cite.page, cite.section) == (7, "Landforms > Fjords")


def test_a_document_deleted_through_the_documents_path_is_never_returned(
    store: DocumentStore,
) -> None:
    import fakeredis

    from bus.documents import DocumentRegistry
    from schemas import DocumentItem, DocumentsTask
    from workers import documents

    registry = DocumentRegistry(fakeredis.FakeRedis())
    item = DocumentItem(
        doc_id="gate",
        title="Gate",
        text="The warehouse gate code is 4711 on weekdays.",
        content_hash="h1",
    )
    store.upsert("acme", all_chunks())
    done = documents.handle(
        DocumentsTask(ingest_id="i1", tenant="acme", items=[item]), store, registry, ttl_s=60
    )
    assert done.files[0].outcome == "indexed"
    assert doc_ids(store.search("acme", "warehouse gate code", k=1)) == ["gate"]
    gone = documents.handle(
        DocumentsTask(ingest_id="i2", tenant="acme", delete=["gate"]), store, registry, ttl_s=60
    )
    assert gone.files[0].outcome == "deleted" and registry.get("acme", "gate") is None
    assert "gate" not in doc_ids(store.search("acme", "warehouse gate code 4711", k=10))
    assert store.count("acme") == 5

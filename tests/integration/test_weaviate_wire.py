"""What WeaviateStore sends over the wire, and how it maps answers and failures.

The real weaviate-client talks to tests/fakes/weaviate_server.py on loopback (REST + gRPC);
the fake records every request. No Weaviate binary, no network beyond 127.0.0.1.
"""

from __future__ import annotations

import array
import socket
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import weaviate.retry
from weaviate.proto.v1 import base_pb2, base_search_pb2

from bus.errors import ConfigError, PermanentError, TransientError
from schemas import Chunk
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.weaviate_server import Collection, FakeWeaviate
from workers.ports import DocumentStore
from workers.settings import WeaviateSettings
from workers.store.batch import PartialBatchError
from workers.store.weaviate import WeaviateStore
from workers.store.weaviate_mapping import chunk_uuid

COLLECTION = "RagrelayChunk"


@pytest.fixture
def fake() -> Iterator[FakeWeaviate]:
    with FakeWeaviate() as server:
        yield server


def settings_for(fake: FakeWeaviate, **extra: Any) -> WeaviateSettings:
    return WeaviateSettings(url=fake.url, grpc_port=fake.grpc_port, **extra)


@pytest.fixture
def store(fake: FakeWeaviate) -> Iterator[WeaviateStore]:
    s = WeaviateStore(settings_for(fake), HashingEmbedder())
    yield s
    s.close()


@pytest.fixture
def no_client_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """weaviate-client sleeps 1, 2, 4, ... s between its own UNAVAILABLE retries; skip the sleeps."""
    slept: list[float] = []
    monkeypatch.setattr(weaviate.retry, "time", types.SimpleNamespace(sleep=slept.append))
    return slept


def chunk(i: int, **extra: Any) -> Chunk:
    fields: dict[str, Any] = {
        "chunk_id": f"doc{i}#0",
        "doc_id": f"doc{i}",
        "title": f"Title {i}",
        "text": f"chunk number {i} about lava",
        "metadata": {"lang": "en", "n": i},
    }
    fields.update(extra)
    return Chunk(**fields)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- start-up and schema ----------------------------------------------------------------------


def test_store_is_a_document_store(store: WeaviateStore) -> None:
    assert isinstance(store, DocumentStore)


def test_start_creates_one_multi_tenant_collection_with_self_provided_vectors(
    fake: FakeWeaviate,
) -> None:
    WeaviateStore(settings_for(fake, collection="TeamChunks"), HashingEmbedder()).close()
    WeaviateStore(settings_for(fake, collection="TeamChunks"), HashingEmbedder()).close()

    created = fake.rest_calls("POST", "/v1/schema")
    assert len(created) == 1, "the second start finds the collection and does not recreate it"
    schema = created[0].body
    assert schema["class"] == "TeamChunks"
    assert schema["multiTenancyConfig"] == {"enabled": True, "autoTenantCreation": False}
    assert schema["vectorConfig"]["default"]["vectorizer"] == {"none": {}}
    assert schema["vectorConfig"]["default"]["vectorIndexConfig"]["distance"] == "cosine"
    props = {p["name"]: p for p in schema["properties"]}
    assert set(props) == {
        "text",
        "title",
        "chunk_id",
        "doc_id",
        "source",
        "chunk_index",
        "metadata",
        "meta_kv",
    }
    assert props["text"]["tokenization"] == "word"
    assert props["doc_id"]["tokenization"] == "field"
    assert props["doc_id"]["indexSearchable"] is False
    assert props["chunk_index"]["dataType"] == ["int"]
    assert props["meta_kv"]["dataType"] == ["text[]"]
    assert props["metadata"]["indexFilterable"] is False


def test_start_skips_the_clients_internet_version_check(fake: FakeWeaviate) -> None:
    WeaviateStore(settings_for(fake), HashingEmbedder()).close()
    # Only our own checks ran: meta (version), gRPC health, the schema lookup and creation.
    assert [(r.transport, r.method, r.path) for r in fake.requests] == [
        ("rest", "GET", "/v1/meta"),
        ("grpc", "Check", "/grpc.health.v1.Health/Check"),
        ("rest", "GET", f"/v1/schema/{COLLECTION}"),
        ("rest", "POST", "/v1/schema"),
    ]


def test_too_old_server_fails_start_with_an_upgrade_hint(fake: FakeWeaviate) -> None:
    fake.version = "1.24.8"
    with pytest.raises(ConfigError, match=r"too old.*1\.27\.0 or newer"):
        WeaviateStore(settings_for(fake), HashingEmbedder())


def test_unreachable_server_fails_start_saying_what_to_set() -> None:
    port = free_port()
    settings = WeaviateSettings(url=f"http://127.0.0.1:{port}", grpc_port=free_port())
    with pytest.raises(
        ConfigError,
        match=rf"Cannot reach Weaviate at http://127.0.0.1:{port}.*RAGRELAY_WEAVIATE_URL",
    ):
        WeaviateStore(settings, HashingEmbedder())


def test_wrong_grpc_port_fails_start_naming_the_setting(fake: FakeWeaviate) -> None:
    settings = WeaviateSettings(url=fake.url, grpc_port=free_port())
    with pytest.raises(ConfigError, match="RAGRELAY_WEAVIATE_GRPC_PORT"):
        WeaviateStore(settings, HashingEmbedder())


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"url": "localhost:8080"}, "RAGRELAY_WEAVIATE_URL"),
        ({"url": "http://x", "fusion": "max"}, "RAGRELAY_WEAVIATE_FUSION"),
        (
            {"url": "http://x", "collection": "chunks"},
            "RAGRELAY_WEAVIATE_COLLECTION",
        ),
        ({}, "RAGRELAY_WEAVIATE_URL"),
    ],
)
def test_bad_settings_are_config_errors_before_any_connection(
    overrides: dict[str, Any], setting: str
) -> None:
    with pytest.raises(ConfigError, match=setting):
        WeaviateStore(WeaviateSettings(**overrides), HashingEmbedder(), connect=False)


def test_existing_collection_without_multi_tenancy_is_a_config_error(fake: FakeWeaviate) -> None:
    fake.collections[COLLECTION] = Collection(
        schema={"class": COLLECTION, "properties": [], "multiTenancyConfig": {"enabled": False}}
    )
    store = WeaviateStore(settings_for(fake), HashingEmbedder())
    with pytest.raises(ConfigError, match=r"without multi-tenancy.*RAGRELAY_WEAVIATE_COLLECTION"):
        store.upsert("acme", [chunk(1)])
    store.close()


# --- auth ---------------------------------------------------------------------------------------


def test_api_key_travels_on_rest_and_grpc(fake: FakeWeaviate) -> None:
    fake.api_key = "s3cret"
    store = WeaviateStore(settings_for(fake, api_key="s3cret"), HashingEmbedder())
    store.upsert("acme", [chunk(1)])
    assert store.search("acme", "lava", k=1)
    store.close()
    schema_get = fake.rest_calls("GET", f"/v1/schema/{COLLECTION}")[0]
    assert schema_get.headers["authorization"] == "Bearer s3cret"
    assert fake.calls("Search")[0].headers["authorization"] == "Bearer s3cret"
    assert fake.calls("BatchObjects")[0].headers["authorization"] == "Bearer s3cret"


def test_wrong_api_key_at_start_is_permanent(fake: FakeWeaviate) -> None:
    fake.api_key = "s3cret"
    with pytest.raises(PermanentError, match=r"not authorised.*RAGRELAY_WEAVIATE_API_KEY"):
        WeaviateStore(settings_for(fake, api_key="wrong"), HashingEmbedder())


def test_key_revoked_while_running_is_permanent_on_grpc_and_rest(fake: FakeWeaviate) -> None:
    fake.api_key = "s3cret"
    store = WeaviateStore(settings_for(fake, api_key="s3cret"), HashingEmbedder())
    store.upsert("acme", [chunk(1)])
    fake.api_key = "rotated"
    with pytest.raises(PermanentError, match="not authorised"):
        store.search("acme", "lava")  # tenant cached: straight to gRPC Search → UNAUTHENTICATED
    with pytest.raises(PermanentError, match="not authorised"):
        store.count("someone-new")  # REST tenant lookup → 401
    store.close()


# --- tenants, batches, UUIDs --------------------------------------------------------------------


def test_first_upsert_creates_the_tenant_once(fake: FakeWeaviate, store: WeaviateStore) -> None:
    store.upsert("acme", [chunk(1)])
    store.upsert("acme", [chunk(2)])
    store.search("acme", "lava")

    assert [r.body for r in fake.rest_calls("POST", f"/v1/schema/{COLLECTION}/tenants")] == [
        [{"name": "acme", "activityStatus": "HOT"}]
    ]
    assert len(fake.rest_calls("HEAD", f"/v1/schema/{COLLECTION}/tenants/acme")) == 1


def test_a_tenant_created_elsewhere_is_found_not_recreated(fake: FakeWeaviate) -> None:
    first = WeaviateStore(settings_for(fake), HashingEmbedder())
    first.upsert("acme", [chunk(1)])
    second = WeaviateStore(settings_for(fake), HashingEmbedder())  # another worker process
    assert second.count("acme") == 1
    second.upsert("acme", [chunk(2)])
    assert len(fake.rest_calls("POST", f"/v1/schema/{COLLECTION}/tenants")) == 1
    first.close()
    second.close()


def test_batch_objects_carry_tenant_vector_properties_and_deterministic_uuid(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    c = chunk(7, source="wiki", chunk_index=3)
    store.upsert("acme", [c])

    (request,) = [r.body for r in fake.calls("BatchObjects")]
    (obj,) = request.objects
    assert obj.collection == COLLECTION
    assert obj.tenant == "acme"
    assert obj.uuid == str(chunk_uuid("acme", "doc7#0"))
    (vec,) = obj.vectors
    assert vec.name == "default"
    sent = np.array(array.array("f", vec.vector_bytes), dtype=np.float32)
    expected = HashingEmbedder().embed(["Title 7\nchunk number 7 about lava"])[0]
    np.testing.assert_allclose(sent, expected, rtol=1e-6)
    stored = fake.stored(COLLECTION, "acme")[obj_uuid(obj.uuid)].properties
    assert stored == {
        "chunk_id": "doc7#0",
        "doc_id": "doc7",
        "title": "Title 7",
        "text": "chunk number 7 about lava",
        "source": "wiki",
        "chunk_index": 3,
        "metadata": '{"lang": "en", "n": 7}',
        "meta_kv": ['lang="en"', "n=7"],
    }


def obj_uuid(value: str) -> Any:
    import uuid

    return uuid.UUID(value)


def test_reingest_sends_the_same_uuids_and_overwrites(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    batch = [chunk(i) for i in range(3)]
    store.upsert("acme", batch)
    store.upsert("acme", batch)
    first, second = fake.calls("BatchObjects")
    assert [o.uuid for o in first.body.objects] == [o.uuid for o in second.body.objects]
    assert len(fake.stored(COLLECTION, "acme")) == 3


def test_uuids_differ_between_tenants_for_the_same_chunk(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    store.upsert("acme", [chunk(1)])
    store.upsert("globex", [chunk(1)])
    a, b = (r.body.objects[0] for r in fake.calls("BatchObjects"))
    assert (a.tenant, b.tenant) == ("acme", "globex")
    assert a.uuid != b.uuid


def test_ragrelay_tenant_names_are_mapped_to_valid_weaviate_names(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    store.upsert("acme.eu", [chunk(1)])
    store.upsert("acme_eu", [chunk(2)])
    assert [o.body.objects[0].tenant for o in fake.calls("BatchObjects")] == [
        "acme_deu",
        "acme_ueu",
    ]


def test_batches_are_split_by_batch_size(fake: FakeWeaviate) -> None:
    store = WeaviateStore(settings_for(fake), HashingEmbedder(), batch_size=40)
    assert store.upsert("acme", [chunk(i) for i in range(100)]) == 100
    assert [len(r.body.objects) for r in fake.calls("BatchObjects")] == [40, 40, 20]
    store.close()


def test_server_side_object_errors_are_listed_not_dropped(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    rejected = {"doc3#0", "doc8#0"}

    def reject(collection: str, tenant: str, props: dict[str, Any]) -> str | None:
        return "vector index is read-only" if props["chunk_id"] in rejected else None

    fake.reject_object = reject
    with pytest.raises(PartialBatchError) as info:
        store.upsert("acme", [chunk(i) for i in range(10)])

    assert info.value.written == 8
    assert [(f.index, f.chunk_id, f.reason) for f in info.value.failures] == [
        (3, "doc3#0", "vector index is read-only"),
        (8, "doc8#0", "vector index is read-only"),
    ]
    assert len(fake.stored(COLLECTION, "acme")) == 8


def test_a_batch_the_server_refuses_entirely_lists_every_chunk(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    fake.reject_object = lambda *_: "disk full"
    with pytest.raises(PartialBatchError) as info:
        store.upsert("acme", [chunk(i) for i in range(4)])
    assert info.value.written == 0
    assert info.value.failed_chunk_ids == [f"doc{i}#0" for i in range(4)]
    assert all("disk full" in f.reason for f in info.value.failures)


def test_client_side_bad_chunks_never_reach_the_server(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    with pytest.raises(PartialBatchError) as info:
        store.upsert("acme", [chunk(1), chunk(2, text=""), chunk(3)])
    assert info.value.failed_chunk_ids == ["doc2#0"]
    (request,) = fake.calls("BatchObjects")
    assert [o.properties.non_ref_properties["chunk_id"] for o in request.body.objects] == [
        "doc1#0",
        "doc3#0",
    ]


# --- queries, deletes, counts -------------------------------------------------------------------


def test_hybrid_query_sends_alpha_fusion_vector_tenant_and_filters(fake: FakeWeaviate) -> None:
    store = WeaviateStore(settings_for(fake, alpha=0.25, fusion="ranked"), HashingEmbedder())
    store.upsert("acme", [chunk(1), chunk(2, metadata={"lang": "fr"})])

    hits = store.search("acme", "lava number", k=4, filters={"doc_id": "doc1", "lang": "en"})

    assert [h.chunk.chunk_id for h in hits] == ["doc1#0"]
    assert hits[0].retriever == "weaviate-hybrid"
    (req,) = [r.body for r in fake.calls("Search")]
    assert req.collection == COLLECTION
    assert req.tenant == "acme"
    assert req.limit == 4
    hybrid = req.hybrid_search
    assert hybrid.query == "lava number"
    assert (hybrid.alpha_param if hybrid.use_alpha_param else hybrid.alpha) == pytest.approx(0.25)
    assert hybrid.fusion_type == base_search_pb2.Hybrid.FUSION_TYPE_RANKED
    assert list(hybrid.properties) == ["text", "title"]
    assert list(hybrid.targets.target_vectors) == ["default"]
    sent = np.array(array.array("f", hybrid.vector_bytes), dtype=np.float32)
    np.testing.assert_allclose(sent, HashingEmbedder().embed(["lava number"])[0], rtol=1e-6)
    f = req.filters
    assert f.operator == base_pb2.Filters.OPERATOR_AND
    doc_filter, meta_filter = f.filters
    assert (doc_filter.target.property, doc_filter.operator, doc_filter.value_text) == (
        "doc_id",
        base_pb2.Filters.OPERATOR_EQUAL,
        "doc1",
    )
    assert meta_filter.target.property == "meta_kv"
    assert meta_filter.operator == base_pb2.Filters.OPERATOR_CONTAINS_ANY
    assert list(meta_filter.value_text_array.values) == ['lang="en"']
    store.close()


def test_default_fusion_is_relative_score_and_scores_come_back(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    store.upsert("acme", [chunk(i) for i in range(5)])
    hits = store.search("acme", "number 3", k=3)
    req = fake.calls("Search")[0].body
    assert req.hybrid_search.fusion_type == base_search_pb2.Hybrid.FUSION_TYPE_RELATIVE_SCORE
    assert req.metadata.score is True
    assert hits[0].chunk.chunk_id == "doc3#0"
    assert hits[0].score > hits[-1].score


def test_unknown_tenant_is_empty_without_querying(fake: FakeWeaviate, store: WeaviateStore) -> None:
    store.upsert("acme", [chunk(1)])
    assert store.search("ghost", "lava") == []
    assert store.count("ghost") == 0
    assert store.delete_documents("ghost", ["doc1"]) == 0
    assert fake.calls("Search") == []
    assert fake.calls("Aggregate") == []
    assert fake.calls("BatchDelete") == []


def test_delete_sends_a_doc_id_filter_in_the_tenant(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    store.upsert("acme", [chunk(i) for i in range(4)])
    assert store.delete_documents("acme", ["doc1", "doc2", "doc1"]) == 2
    (req,) = [r.body for r in fake.calls("BatchDelete")]
    assert req.tenant == "acme"
    assert req.filters.target.property == "doc_id"
    assert req.filters.operator == base_pb2.Filters.OPERATOR_CONTAINS_ANY
    assert list(req.filters.value_text_array.values) == ["doc1", "doc2"]


def test_count_is_an_aggregate_in_the_tenant(fake: FakeWeaviate, store: WeaviateStore) -> None:
    store.upsert("acme", [chunk(i) for i in range(3)])
    assert store.count("acme") == 3
    (req,) = [r.body for r in fake.calls("Aggregate")]
    assert (req.tenant, req.objects_count) == ("acme", True)


# --- availability -------------------------------------------------------------------------------


def test_unavailable_server_is_transient_after_the_clients_own_retries(
    fake: FakeWeaviate, store: WeaviateStore, no_client_backoff: list[float]
) -> None:
    store.upsert("acme", [chunk(1)])
    fake.unavailable = True

    with pytest.raises(TransientError, match="unavailable"):
        store.search("acme", "lava")
    assert len(fake.calls("Search")) == 6  # weaviate-client tried 6 times, sleeping after each
    assert no_client_backoff == [1, 2, 4, 8, 16, 32]
    no_client_backoff.clear()
    with pytest.raises(TransientError):
        store.upsert("acme", [chunk(2)])
    assert len(fake.calls("BatchObjects")) == 1 + 4  # the first batch, then 4 failed attempts
    assert no_client_backoff == [1, 2, 4, 8]
    with pytest.raises(TransientError):
        store.count("new-tenant")  # REST answers 503


def test_server_gone_is_transient(
    fake: FakeWeaviate, store: WeaviateStore, no_client_backoff: list[float]
) -> None:
    store.upsert("acme", [chunk(1)])
    fake.stop()
    with pytest.raises(TransientError):
        store.search("acme", "lava")
    with pytest.raises(TransientError):
        store.count("someone-else")


def test_slow_server_times_out_as_transient(fake: FakeWeaviate) -> None:
    store = WeaviateStore(settings_for(fake, timeout_s=0.3), HashingEmbedder())
    store.upsert("acme", [chunk(1)])
    fake.grpc_delay_s = 1.0
    with pytest.raises(TransientError, match=r"(?i)deadline"):
        store.search("acme", "lava")
    fake.grpc_delay_s = 0.0
    store.close()


def test_health_reports_rest_and_grpc(fake: FakeWeaviate, store: WeaviateStore) -> None:
    assert store.health().ok
    fake.unavailable = True
    health = store.health()
    assert (health.ok, health.rest_ready, health.grpc_serving) == (False, False, False)
    assert "503" in health.detail
    fake.stop()
    assert "unreachable" in store.health().detail


def test_one_connection_per_process_is_reused_and_renewed_after_fork(
    fake: FakeWeaviate, store: WeaviateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.upsert("acme", [chunk(1)])
    store.search("acme", "lava")
    store.count("acme")
    assert len(fake.rest_calls("GET", "/v1/meta")) == 1

    monkeypatch.setattr("workers.store.weaviate.os.getpid", lambda: -4242)  # as in a forked child
    store.search("acme", "lava")

    assert len(fake.rest_calls("GET", "/v1/meta")) == 2
    assert len(fake.rest_calls("HEAD", f"/v1/schema/{COLLECTION}/tenants/acme")) == 2
    store.close()  # the "child's" own client
    monkeypatch.undo()
    for inherited in store._abandoned:  # in a real child these belong to the parent
        inherited.close()


def test_one_store_serves_many_threads(fake: FakeWeaviate, store: WeaviateStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store.upsert("acme", [chunk(i) for i in range(20)])

    def work(i: int) -> int:
        tenant = f"t{i % 4}"
        store.upsert(tenant, [chunk(100 + i)])
        return len(store.search("acme", f"number {i % 20}", k=3)) + store.count(tenant)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(40)))

    assert all(r >= 1 for r in results)
    assert sum(store.count(f"t{j}") for j in range(4)) == 40
    assert len(fake.rest_calls("GET", "/v1/meta")) == 1  # one connection, shared by the threads
    created = [
        r.body[0]["name"] for r in fake.rest_calls("POST", f"/v1/schema/{COLLECTION}/tenants")
    ]
    assert sorted(created) == ["acme", "t0", "t1", "t2", "t3"]  # each tenant created once


def test_the_fake_answers_the_clients_tenant_listing_and_nodes(
    fake: FakeWeaviate, store: WeaviateStore
) -> None:
    """The fake's other endpoints, driven by the plain client (what operators would call)."""
    import weaviate as wv

    store.upsert("acme", [chunk(1)])
    store.upsert("globex", [chunk(2)])
    client = wv.connect_to_custom(
        http_host="127.0.0.1",
        http_port=fake.http_port,
        http_secure=False,
        grpc_host="127.0.0.1",
        grpc_port=fake.grpc_port,
        grpc_secure=False,
        skip_init_checks=True,
    )
    try:
        tenants = client.collections.use(COLLECTION).tenants.get()  # gRPC TenantsGet
        assert sorted(tenants) == ["acme", "globex"]
        assert fake.calls("TenantsGet")
        nodes = client.cluster.nodes()  # REST /v1/nodes
        assert [n.name for n in nodes] == ["fake-0"]
        assert client.collections.exists(COLLECTION)
    finally:
        client.close()

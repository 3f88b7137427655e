"""Pure parts of the Weaviate store: names, UUIDs, properties, bad chunks, error mapping."""

from __future__ import annotations

import uuid

import grpc  # type: ignore[import-untyped]
import httpx
import pytest
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateConnectionError,
    WeaviateQueryError,
)

from bus.errors import ConfigError, PermanentError, TransientError
from schemas import Chunk
from workers.store.batch import ChunkFailure, PartialBatchError, chunk_problem
from workers.store.weaviate_errors import translate
from workers.store.weaviate_mapping import (
    check_fusion,
    chunk_from_properties,
    chunk_properties,
    chunk_uuid,
    meta_term,
    parse_endpoint,
    weaviate_tenant,
)


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [("acme", "acme"), ("tenant-a", "tenant-a"), ("acme.eu", "acme_deu"), ("a_b", "a_ub")],
)
def test_tenant_names_map_to_weaviate_names(tenant: str, expected: str) -> None:
    assert weaviate_tenant(tenant) == expected


def test_tenant_mapping_never_merges_two_tenants() -> None:
    names = [
        "a.b",
        "a_b",
        "a_db",
        "a_ub",
        "a-b",
        "ab",
        "a" * 64,
        "a" * 63 + ".",
        "x" * 40 + "." * 20,
    ]
    mapped = [weaviate_tenant(n) for n in names]
    assert len(set(mapped)) == len(names)
    assert all(0 < len(m) <= 64 for m in mapped)


def test_chunk_uuid_is_deterministic_and_tenant_scoped() -> None:
    assert chunk_uuid("acme", "d#0") == chunk_uuid("acme", "d#0")
    assert chunk_uuid("acme", "d#0") != chunk_uuid("globex", "d#0")
    assert chunk_uuid("acme", "d#0").version == 5
    assert isinstance(chunk_uuid("acme", "d#0"), uuid.UUID)


def test_properties_round_trip_a_chunk() -> None:
    c = Chunk(
        chunk_id="d#2",
        doc_id="d",
        title="T",
        text="x",
        source="s",
        chunk_index=2,
        metadata={"a": [1, {"b": None}], "é": "ü"},
    )
    assert chunk_from_properties(chunk_properties(c)) == c


def test_meta_terms_are_canonical() -> None:
    assert meta_term("n", 1) == meta_term("n", 1.0) == "n=1"
    assert meta_term("m", {"b": 1, "a": 2}) == 'm={"a":2,"b":1}'
    assert meta_term("s", "x") == 's="x"'


@pytest.mark.parametrize(
    ("chunk", "problem"),
    [
        (Chunk(chunk_id=" ", doc_id="d", text="x"), "chunk_id"),
        (Chunk(chunk_id="c", doc_id="", text="x"), "doc_id"),
        (Chunk(chunk_id="c", doc_id="d", text="\n"), "text"),
        # Chunk validation refuses these first; the store still names them when a chunk was
        # built without validation (model_construct)
        (
            Chunk.model_construct(chunk_id="c", doc_id="d", text="x", metadata={"k": object()}),
            "metadata",
        ),
        (
            Chunk.model_construct(chunk_id="c", doc_id="d", text="x", metadata={"k": float("inf")}),
            "metadata",
        ),
    ],
)
def test_bad_chunks_are_named(chunk: Chunk, problem: str) -> None:
    assert problem in (chunk_problem(chunk) or "")


def test_good_chunk_has_no_problem() -> None:
    assert (
        chunk_problem(Chunk(chunk_id="c", doc_id="d", text="x", metadata={"a": [1.5, None]}))
        is None
    )


def test_partial_batch_error_is_permanent_and_lists_failures() -> None:
    err = PartialBatchError(3, [ChunkFailure(1, "c1", "bad")])
    assert isinstance(err, PermanentError)
    assert err.failed_chunk_ids == ["c1"]
    assert "1 chunk(s) not written, 3 written" in str(err)


def test_endpoint_parsing() -> None:
    ep = parse_endpoint("https://w.example.com", 443)
    assert (ep.http_host, ep.http_port, ep.http_secure, ep.grpc_port, ep.grpc_secure) == (
        "w.example.com",
        443,
        True,
        443,
        True,
    )
    assert parse_endpoint("http://localhost:8080/", 50051).url == "http://localhost:8080"
    with pytest.raises(ConfigError, match="RAGRELAY_WEAVIATE_URL"):
        parse_endpoint("localhost:8080", 50051)


def test_fusion_names() -> None:
    assert check_fusion("Relative-Score") == "relative_score"
    assert check_fusion("ranked") == "ranked"
    with pytest.raises(ConfigError):
        check_fusion("rrf")


class _Rpc(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return str(self._code.name)


def _query_error_from(code: grpc.StatusCode) -> WeaviateQueryError:
    """As weaviate-client raises it: inside ``except RpcError``, so the call is the context."""
    exc = WeaviateQueryError(code.name, "GRPC search")
    exc.__context__ = _Rpc(code)
    return exc


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, TransientError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, TransientError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, TransientError),
        (grpc.StatusCode.UNAUTHENTICATED, PermanentError),
        (grpc.StatusCode.PERMISSION_DENIED, PermanentError),
        (grpc.StatusCode.INVALID_ARGUMENT, PermanentError),
    ],
)
def test_grpc_failures_are_classified_by_status_code(code: grpc.StatusCode, kind: type) -> None:
    assert type(translate(_query_error_from(code), "searching")) is kind


@pytest.mark.parametrize(
    ("status", "kind"),
    [(401, PermanentError), (429, TransientError), (503, TransientError), (422, PermanentError)],
)
def test_http_failures_are_classified_by_status(status: int, kind: type) -> None:
    exc = UnexpectedStatusCodeError(
        "x", httpx.Response(status, request=httpx.Request("GET", "http://x"))
    )
    assert type(translate(exc, "doing")) is kind


def test_connection_errors_are_transient() -> None:
    assert isinstance(translate(WeaviateConnectionError("refused"), "doing"), TransientError)

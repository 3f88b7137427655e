"""A loopback Weaviate for tests: REST on ``http.server`` and gRPC on ``grpc.server``.

It speaks what ragrelay's :class:`workers.store.weaviate.WeaviateStore` (and the real
weaviate-client under it) uses, with the generated stubs shipped inside weaviate-client:

* REST: ``/v1/meta``, ``/v1/.well-known/{ready,live,openid-configuration}``, ``/v1/nodes``,
  ``/v1/schema`` (GET/POST), ``/v1/schema/{c}`` (GET/DELETE), ``/v1/schema/{c}/tenants``
  (GET/POST/DELETE), ``/v1/schema/{c}/tenants/{t}`` (GET/HEAD).
* gRPC ``weaviate.v1.Weaviate``: ``Search`` (hybrid, BM25, near-vector, filters),
  ``BatchObjects``, ``BatchDelete``, ``TenantsGet``, ``Aggregate`` (count), and
  ``grpc.health.v1.Health/Check`` through a generic handler.

Objects live in memory per collection and tenant. Every request is recorded
(:attr:`FakeWeaviate.requests`) so tests can assert what a client sent. It can be told to
fail: ``version`` (too old), ``api_key`` (401 / UNAUTHENTICATED without it),
``unavailable`` (503 / UNAVAILABLE / NOT_SERVING), ``grpc_delay_s`` (slow answers, for
timeouts) and ``reject_object`` (per-object batch errors, as Weaviate reports them).

It is a fake: no persistence, no replication, no vectorizer modules, no auto-schema.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import ThreadingHTTPServer
from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type hints
from weaviate.proto.v1 import (
    aggregate_pb2,
    batch_delete_pb2,
    batch_pb2,
    health_weaviate_pb2,
    search_get_pb2,
    tenants_pb2,
    weaviate_pb2_grpc,
)

from tests.fakes.weaviate_logic import (
    Collection,
    Recorded,
    StoredObject,
    bm25_scores,
    cosine,
    decode_batch_properties,
    decode_vectors,
    encode_properties,
    fuse,
    hybrid_alpha,
    matches,
    prop_types,
    query_vector,
)
from tests.fakes.weaviate_rest import RestHandler

HOT = tenants_pb2.TENANT_ACTIVITY_STATUS_HOT


class FakeWeaviate:
    """Start with :meth:`start` (or as a context manager); ``url`` and ``grpc_port`` to connect."""

    def __init__(self, *, version: str = "1.32.0", api_key: str | None = None) -> None:
        self.version = version
        self.api_key = api_key
        self.unavailable = False
        self.grpc_delay_s = 0.0
        # (collection, tenant, properties) -> error message, or None to accept the object.
        self.reject_object: Callable[[str, str, dict[str, Any]], str | None] | None = None
        self.requests: list[Recorded] = []
        self.collections: dict[str, Collection] = {}
        self.lock = threading.RLock()
        self._http: ThreadingHTTPServer | None = None
        self._grpc: grpc.Server | None = None
        self.http_port = 0
        self.grpc_port = 0
        self._connections: set[socket.socket] = set()  # open keep-alive REST connections

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeWeaviate:
        handler = type("Handler", (RestHandler,), {"fake": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-weaviate-rest",
            daemon=True,
        ).start()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Servicer(self), self._grpc)  # type: ignore[no-untyped-call]
        self._grpc.add_generic_rpc_handlers((_health_handler(self),))
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return self

    def stop(self) -> None:
        """Stop both servers and cut open connections, as a crashed Weaviate would."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        with self.lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._connections.clear()
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait(5)
            self._grpc = None

    def __enter__(self) -> FakeWeaviate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # --- what tests look at -------------------------------------------------------------------

    def record(self, rec: Recorded) -> None:
        with self.lock:
            self.requests.append(rec)

    def calls(self, method: str) -> list[Recorded]:
        """Recorded requests whose method (HTTP verb or gRPC method name) is ``method``."""
        with self.lock:
            return [r for r in self.requests if r.method == method]

    def rest_calls(self, verb: str, path_prefix: str) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.transport == "rest" and r.method == verb and r.path.startswith(path_prefix)
            ]

    def stored(self, collection: str, tenant: str) -> dict[uuid.UUID, StoredObject]:
        with self.lock:
            return dict(self.collections[collection].tenants.get(tenant, {}))

    def authorised(self, header: str | None) -> bool:
        return self.api_key is None or header == f"Bearer {self.api_key}"


# --- gRPC ---------------------------------------------------------------------------------------


def _health_handler(fake: FakeWeaviate) -> grpc.GenericRpcHandler:
    Reply = health_weaviate_pb2.WeaviateHealthCheckResponse

    def check(request: Any, context: grpc.ServicerContext) -> Any:
        fake.record(Recorded("grpc", "Check", "/grpc.health.v1.Health/Check", request))
        return Reply(status=Reply.NOT_SERVING if fake.unavailable else Reply.SERVING)

    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                response_serializer=Reply.SerializeToString,
            )
        },
    )


class _Servicer(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, fake: FakeWeaviate) -> None:
        self.fake = fake

    def _enter(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        metadata = {k.lower(): v for k, v in context.invocation_metadata()}
        self.fake.record(
            Recorded("grpc", method, f"/weaviate.v1.Weaviate/{method}", request, metadata)
        )
        if self.fake.grpc_delay_s:
            time.sleep(self.fake.grpc_delay_s)
        if self.fake.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection refused (fake unavailable)")
        if not self.fake.authorised(metadata.get("authorization")):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "anonymous access not enabled")

    def _collection(self, name: str, context: grpc.ServicerContext) -> Collection:
        col = self.fake.collections.get(name)
        if col is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"class {name!r} not found")
        assert col is not None
        return col

    def _objects(
        self, col: Collection, tenant: str, context: grpc.ServicerContext
    ) -> dict[uuid.UUID, StoredObject]:
        if not col.multi_tenant:
            if tenant:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "class has multi-tenancy disabled, but request was with tenant",
                )
            return col.objects
        if not tenant:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "class has multi-tenancy enabled, but request was without tenant",
            )
        if tenant not in col.tenants:
            context.abort(grpc.StatusCode.NOT_FOUND, f'tenant not found: "{tenant}"')
        return col.tenants[tenant]

    # -- BatchObjects --

    def BatchObjects(
        self, request: batch_pb2.BatchObjectsRequest, context: grpc.ServicerContext
    ) -> batch_pb2.BatchObjectsReply:
        self._enter("BatchObjects", request, context)
        start = time.perf_counter()
        errors = []
        with self.fake.lock:
            for index, obj in enumerate(request.objects):
                problem = self._store_one(obj)
                if problem:
                    errors.append(
                        batch_pb2.BatchObjectsReply.BatchError(index=index, error=problem)
                    )
        return batch_pb2.BatchObjectsReply(took=time.perf_counter() - start, errors=errors)

    def _store_one(self, obj: batch_pb2.BatchObject) -> str | None:
        col = self.fake.collections.get(obj.collection)
        if col is None:
            return f"class {obj.collection!r} not found"
        if col.multi_tenant and not obj.tenant:
            return "has multi-tenancy enabled, but request was without tenant"
        if col.multi_tenant and obj.tenant not in col.tenants:
            return f'tenant not found: "{obj.tenant}"'
        types = prop_types(col.schema)
        props = decode_batch_properties(obj.properties, types)
        for name in props:
            if name not in types:
                return f"no such prop with name '{name}' found in class '{obj.collection}' in the schema"
        vectors = decode_vectors(obj)
        bucket = col.tenants[obj.tenant] if col.multi_tenant else col.objects
        for name, vec in vectors.items():
            for other in self._all_objects(col):
                have = other.vectors.get(name)
                if have is not None and len(have) != len(vec):
                    return (
                        f"new node has a vector with length {len(vec)}. "
                        f"Existing nodes have vectors with length {len(have)}"
                    )
                if have is not None:
                    break
        if self.fake.reject_object is not None:
            problem = self.fake.reject_object(obj.collection, obj.tenant, props)
            if problem:
                return problem
        oid = uuid.UUID(obj.uuid)
        bucket[oid] = StoredObject(oid, props, vectors)  # same uuid: replaced (an upsert)
        return None

    @staticmethod
    def _all_objects(col: Collection) -> Iterator[StoredObject]:
        yield from col.objects.values()
        for bucket in col.tenants.values():
            yield from bucket.values()

    # -- Search --

    def Search(
        self, request: search_get_pb2.SearchRequest, context: grpc.ServicerContext
    ) -> search_get_pb2.SearchReply:
        self._enter("Search", request, context)
        start = time.perf_counter()
        with self.fake.lock:
            col = self._collection(request.collection, context)
            candidates = list(self._objects(col, request.tenant, context).values())
            types = prop_types(col.schema)
        if request.HasField("filters"):
            candidates = [o for o in candidates if matches(o.properties, request.filters)]
        searchable = [
            p["name"]
            for p in col.schema.get("properties", [])
            if p["dataType"][0] in ("text", "text[]") and p.get("indexSearchable", True)
        ]
        ranked: list[tuple[StoredObject, float | None]]
        by_id = {o.uuid: o for o in candidates}
        if request.HasField("hybrid_search"):
            hybrid = request.hybrid_search
            props = list(hybrid.properties) or searchable
            keyword = bm25_scores(candidates, hybrid.query, props)
            target, vec = query_vector(hybrid)
            alpha = hybrid_alpha(hybrid)
            vector_scores: dict[uuid.UUID, float] = {}
            if alpha > 0:
                if vec is None:
                    context.abort(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        "hybrid: no vector given and the collection has no vectorizer",
                    )
                    raise AssertionError("abort raises")
                name = target or "default"
                try:
                    vector_scores = {
                        o.uuid: cosine(vec, o.vectors[name])
                        for o in candidates
                        if name in o.vectors
                    }
                except ValueError as exc:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            ranked = [
                (by_id[oid], s)
                for oid, s in fuse(keyword, vector_scores, alpha, hybrid.fusion_type)
            ]
        elif request.HasField("bm25_search"):
            bm = request.bm25_search
            scores = bm25_scores(candidates, bm.query, list(bm.properties) or searchable)
            ranked = [(by_id[o], s) for o, s in sorted(scores.items(), key=lambda x: -x[1])]
        else:
            ranked = [(o, None) for o in sorted(candidates, key=lambda o: str(o.uuid))]
        offset = request.offset
        limit = request.limit or 10
        wanted = (
            list(request.properties.non_ref_properties)
            if request.HasField("properties")
            else list(types)
        )
        if request.properties.return_all_nonref_properties:
            wanted = list(types)
        results = []
        for obj, score in ranked[offset : offset + limit]:
            meta = search_get_pb2.MetadataResult(id=str(obj.uuid), id_as_bytes=obj.uuid.bytes)
            if request.metadata.score and score is not None:
                meta.score = score
                meta.score_present = True
            results.append(
                search_get_pb2.SearchResult(
                    properties=search_get_pb2.PropertiesResult(
                        non_ref_props=encode_properties(obj.properties, wanted, types),
                        target_collection=request.collection,
                    ),
                    metadata=meta,
                )
            )
        return search_get_pb2.SearchReply(took=time.perf_counter() - start, results=results)

    # -- BatchDelete --

    def BatchDelete(
        self, request: batch_delete_pb2.BatchDeleteRequest, context: grpc.ServicerContext
    ) -> batch_delete_pb2.BatchDeleteReply:
        self._enter("BatchDelete", request, context)
        with self.fake.lock:
            col = self._collection(request.collection, context)
            bucket = self._objects(col, request.tenant, context)
            hit = [o for o in bucket.values() if matches(o.properties, request.filters)]
            if not request.dry_run:
                for o in hit:
                    del bucket[o.uuid]
        objects = (
            [batch_delete_pb2.BatchDeleteObject(uuid=o.uuid.bytes, successful=True) for o in hit]
            if request.verbose
            else []
        )
        done = 0 if request.dry_run else len(hit)
        return batch_delete_pb2.BatchDeleteReply(
            took=0.0, failed=0, matches=len(hit), successful=done, objects=objects
        )

    # -- TenantsGet --

    def TenantsGet(
        self, request: tenants_pb2.TenantsGetRequest, context: grpc.ServicerContext
    ) -> tenants_pb2.TenantsGetReply:
        self._enter("TenantsGet", request, context)
        with self.fake.lock:
            col = self._collection(request.collection, context)
            names = list(col.tenants)
        if request.HasField("names"):
            names = [n for n in request.names.values if n in names]
        return tenants_pb2.TenantsGetReply(
            took=0.0, tenants=[tenants_pb2.Tenant(name=n, activity_status=HOT) for n in names]
        )

    # -- Aggregate (count only) --

    def Aggregate(
        self, request: aggregate_pb2.AggregateRequest, context: grpc.ServicerContext
    ) -> aggregate_pb2.AggregateReply:
        self._enter("Aggregate", request, context)
        with self.fake.lock:
            col = self._collection(request.collection, context)
            objs = list(self._objects(col, request.tenant, context).values())
        if request.HasField("filters"):
            objs = [o for o in objs if matches(o.properties, request.filters)]
        if request.aggregations or request.HasField("group_by"):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake aggregates counts only")
        return aggregate_pb2.AggregateReply(
            took=0.0, single_result=aggregate_pb2.AggregateReply.Single(objects_count=len(objs))
        )


__all__ = ["Collection", "FakeWeaviate", "Recorded", "StoredObject"]

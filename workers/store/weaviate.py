"""The Weaviate document store (weaviate-client v4): hybrid search, one tenant per ragrelay tenant.

One collection per deployment (``RAGRELAY_WEAVIATE_COLLECTION``), multi-tenancy on, vectors
from our :class:`workers.ports.Embedder` (self-provided, named vector ``default``, cosine).
How chunks map to objects (properties, UUIDs, tenant names) is in
:mod:`workers.store.weaviate_mapping`, the collection schema and filters in
:mod:`workers.store.weaviate_schema`; this module does the I/O and translates the client's
exceptions once (:mod:`workers.store.weaviate_errors`):

* unreachable / too old at start-up → :class:`ConfigError` (what to set or upgrade);
* rejected credentials (401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED) → :class:`PermanentError`;
* unavailable, timeouts, 429/5xx, connection resets → :class:`TransientError` (our retry policy);
* anything else the server refuses → :class:`PermanentError`.

The client is connected once per process and reused; after a ``fork`` (Celery prefork) the
child opens its own connection on first use (gRPC channels must not cross a fork).
``skip_init_checks=True`` is deliberate: the client's own start-up checks would call PyPI
over the internet; this store checks ``/v1/meta`` (version ≥ 1.27) and gRPC health itself.

Note: weaviate-client retries gRPC ``UNAVAILABLE`` on queries and aggregations itself, with
exponential backoff (1+2+4+8+16+32 s), before it raises; that wait comes before our
TransientError.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type hints
import httpx
import weaviate
from weaviate.classes.config import (
    Configure,
    VectorDistances,
)
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.classes.tenants import Tenant
from weaviate.exceptions import (
    UnexpectedStatusCodeError,
    WeaviateBaseError,
    WeaviateInsertManyAllFailedError,
    WeaviateStartUpError,
)
from weaviate.proto.v1 import health_weaviate_pb2

from bus.errors import ConfigError, PermanentError, RagrelayError, TransientError
from schemas import Chunk, ScoredChunk
from workers.ports import Embedder
from workers.settings import WeaviateSettings
from workers.store.batch import ChunkFailure, PartialBatchError, chunk_problem
from workers.store.weaviate_errors import http_status, short, translate
from workers.store.weaviate_mapping import (
    RETURN_PROPERTIES,
    SEARCH_PROPERTIES,
    VECTOR_NAME,
    Endpoint,
    check_collection_name,
    check_fusion,
    chunk_from_properties,
    chunk_properties,
    chunk_uuid,
    embed_text,
    parse_endpoint,
    weaviate_tenant,
)
from workers.store.weaviate_schema import PROPERTIES, where_filter

if TYPE_CHECKING:
    from weaviate.collections import Collection

MIN_VERSION = "1.27.0"
DELETE_IDS_PER_CALL = 100
QUERY_MAXIMUM_RESULTS = 10_000  # Weaviate's default cap on objects one delete may match


@dataclass(frozen=True)
class Health:
    """What a readiness probe needs: is Weaviate answering on REST and gRPC."""

    ok: bool
    rest_ready: bool
    grpc_serving: bool
    detail: str = ""


class WeaviateStore:
    """A :class:`workers.ports.DocumentStore` on Weaviate.

    Built from :class:`WeaviateSettings` (``url``, ``grpc_port``, ``api_key``,
    ``collection``, ``alpha``, ``fusion``, ``timeout_s``) and the embedder that provides
    vectors. Connects at once, so a wrong URL or an old server fails at start-up with a
    :class:`ConfigError`.
    """

    def __init__(
        self,
        settings: WeaviateSettings,
        embedder: Embedder,
        *,
        batch_size: int = 200,
        connect: bool = True,
    ) -> None:
        if not settings.url:
            raise ConfigError(
                "Set RAGRELAY_WEAVIATE_URL (e.g. http://localhost:8080) to use Weaviate."
            )
        self.endpoint: Endpoint = parse_endpoint(settings.url, settings.grpc_port)
        self.collection_name = check_collection_name(settings.collection)
        self.alpha = settings.alpha
        self.fusion = check_fusion(settings.fusion)
        self.timeout_s = settings.timeout_s
        key = settings.api_key
        self._api_key = key.get_secret_value() if key is not None else None
        self.embedder = embedder
        self.batch_size = max(1, batch_size)
        self._lock = threading.RLock()
        self._tenant_lock = threading.Lock()
        self._client: weaviate.WeaviateClient | None = None
        self._pid: int | None = None
        self._tenants: set[str] = set()
        self._abandoned: list[weaviate.WeaviateClient] = []
        if connect:
            self._connected()

    # --- connection -------------------------------------------------------------------------

    def _connected(self) -> weaviate.WeaviateClient:
        """This process's client, connecting (and preparing the collection) on first use."""
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                return self._client
            # A client inherited across fork is abandoned, not closed: its sockets and gRPC
            # channel are the parent's. It stays referenced so its finaliser never runs here.
            if self._client is not None:
                self._abandoned.append(self._client)
            self._client, self._pid = None, None
            self._tenants.clear()
            client = self._open()
            try:
                self._ensure_collection(client)
            except BaseException:
                client.close()
                raise
            self._client, self._pid = client, os.getpid()
            return client

    def _open(self) -> weaviate.WeaviateClient:
        ep = self.endpoint
        init_s = min(self.timeout_s, 10.0)
        try:
            client = weaviate.connect_to_custom(
                http_host=ep.http_host,
                http_port=ep.http_port,
                http_secure=ep.http_secure,
                grpc_host=ep.grpc_host,
                grpc_port=ep.grpc_port,
                grpc_secure=ep.grpc_secure,
                auth_credentials=Auth.api_key(self._api_key) if self._api_key else None,
                additional_config=AdditionalConfig(
                    timeout=Timeout(init=init_s, query=self.timeout_s, insert=self.timeout_s)
                ),
                skip_init_checks=True,
            )
        except WeaviateStartUpError as exc:
            raise self._startup_error(exc) from exc
        except WeaviateBaseError as exc:
            raise translate(exc, f"connecting to {ep.url}") from exc
        if not self._grpc_serving(init_s):
            client.close()
            raise ConfigError(
                f"Weaviate answers at {ep.url} but not on gRPC {ep.grpc_host}:{ep.grpc_port}. "
                "Set RAGRELAY_WEAVIATE_GRPC_PORT to Weaviate's gRPC port (default 50051) "
                "and make sure it is exposed."
            )
        return client

    def _startup_error(self, exc: WeaviateStartUpError) -> ConfigError:
        text = str(exc)
        if "is not supported" in text:
            return ConfigError(
                f"Weaviate at {self.endpoint.url} is too old for ragrelay: {short(exc)} "
                f"Upgrade Weaviate to {MIN_VERSION} or newer."
            )
        return ConfigError(
            f"Cannot reach Weaviate at {self.endpoint.url}. Is it running? "
            "Check RAGRELAY_WEAVIATE_URL (e.g. http://localhost:8080). "
            f"({short(exc)})"
        )

    def _grpc_serving(self, timeout_s: float) -> bool:
        ep = self.endpoint
        target = f"{ep.grpc_host}:{ep.grpc_port}"
        channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials())
            if ep.grpc_secure
            else grpc.insecure_channel(target)
        )
        try:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_weaviate_pb2.WeaviateHealthCheckRequest.SerializeToString,
                response_deserializer=health_weaviate_pb2.WeaviateHealthCheckResponse.FromString,
            )
            reply = check(health_weaviate_pb2.WeaviateHealthCheckRequest(), timeout=timeout_s)
            serving = health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING
            return bool(reply.status == serving)
        except grpc.RpcError:
            return False
        finally:
            channel.close()

    def _ensure_collection(self, client: weaviate.WeaviateClient) -> None:
        name = self.collection_name
        try:
            if client.collections.exists(name):
                return
            try:
                client.collections.create(
                    name,
                    description="ragrelay chunks (one tenant per ragrelay tenant)",
                    properties=PROPERTIES,
                    multi_tenancy_config=Configure.multi_tenancy(
                        enabled=True, auto_tenant_creation=False
                    ),
                    vector_config=Configure.Vectors.self_provided(
                        name=VECTOR_NAME,
                        vector_index_config=Configure.VectorIndex.hnsw(
                            distance_metric=VectorDistances.COSINE
                        ),
                    ),
                )
            except UnexpectedStatusCodeError as exc:
                # Another worker may have created it first: that is fine.
                if exc.status_code == 422 and client.collections.exists(name):
                    return
                raise
        except WeaviateBaseError as exc:
            raise translate(exc, f"preparing collection {name}") from exc

    def _collection(self) -> Collection[Any, Any]:
        return self._connected().collections.use(self.collection_name)

    @contextmanager
    def _boundary(self, action: str) -> Iterator[None]:
        try:
            yield
        except WeaviateBaseError as exc:
            raise translate(exc, action) from exc
        except httpx.TransportError as exc:
            raise translate(exc, action) from exc

    # --- tenants ----------------------------------------------------------------------------

    def _tenant_exists(self, name: str) -> bool:
        collection = self._collection()  # first: a new process starts with an empty cache
        if name in self._tenants:
            return True
        try:
            with self._boundary(f"looking up tenant {name}"):
                found = bool(collection.tenants.exists(name))
        except PermanentError as exc:
            raise self._not_multi_tenant(exc) from exc.__cause__
        if found:
            with self._lock:
                self._tenants.add(name)
        return found

    def _not_multi_tenant(self, exc: PermanentError) -> RagrelayError:
        """A collection made elsewhere without multi-tenancy is a setup problem, not a step's."""
        cause = exc.__cause__
        if not (cause is not None and http_status(cause) == 422):
            return exc  # Weaviate answers a tenant lookup with 422 only on such a collection
        return ConfigError(
            f"Weaviate refused a tenant lookup on collection {self.collection_name} (422): it "
            "is not the multi-tenant collection ragrelay needs for tenant isolation (created "
            "without multi-tenancy, or deleted). Set RAGRELAY_WEAVIATE_COLLECTION to a new "
            "name (ragrelay creates it) or migrate the collection."
        )

    def _ensure_tenant(self, name: str) -> None:
        if name in self._tenants and self._pid == os.getpid():
            return
        with self._tenant_lock:  # threads of one process create a tenant once
            if self._tenant_exists(name):
                return
            with self._boundary(f"creating tenant {name}"):
                try:
                    self._collection().tenants.create([Tenant(name=name)])
                except UnexpectedStatusCodeError as exc:
                    # Another process may have created it first: that is fine.
                    if not (exc.status_code == 422 and self._collection().tenants.exists(name)):
                        raise
            with self._lock:
                self._tenants.add(name)

    # --- DocumentStore ----------------------------------------------------------------------

    def upsert(self, tenant: str, chunks: Sequence[Chunk]) -> int:
        """Write ``chunks``; raise :class:`PartialBatchError` listing any not written."""
        failures: list[ChunkFailure] = []
        good: dict[str, tuple[int, Chunk]] = {}  # by chunk_id: the last one wins
        for index, chunk in enumerate(chunks):
            problem = chunk_problem(chunk)
            if problem is not None:
                failures.append(ChunkFailure(index, chunk.chunk_id, problem))
            else:
                good[chunk.chunk_id] = (index, chunk)
        written = 0
        if good:
            name = weaviate_tenant(tenant)
            self._ensure_tenant(name)
            items = sorted(good.values(), key=lambda item: item[0])
            for start in range(0, len(items), self.batch_size):
                part = items[start : start + self.batch_size]
                ok, failed = self._insert(tenant, name, part)
                written += ok
                failures.extend(failed)
        if failures:
            failures.sort(key=lambda f: f.index)
            raise PartialBatchError(written, failures)
        return written

    def _insert(
        self, tenant: str, name: str, part: Sequence[tuple[int, Chunk]]
    ) -> tuple[int, list[ChunkFailure]]:
        vectors = self.embedder.embed([embed_text(chunk) for _, chunk in part])
        objects = [
            DataObject(
                properties=chunk_properties(chunk),
                uuid=chunk_uuid(tenant, chunk.chunk_id),
                vector={VECTOR_NAME: [float(x) for x in vectors[i]]},
            )
            for i, (_, chunk) in enumerate(part)
        ]
        collection = self._collection().with_tenant(name)
        try:
            result = collection.data.insert_many(objects)
        except WeaviateInsertManyAllFailedError as exc:
            # Every object was refused; the client folds the per-object errors together.
            reason = short(exc)
            return 0, [ChunkFailure(i, c.chunk_id, reason) for i, c in part]
        except WeaviateBaseError as exc:
            raise translate(exc, f"importing {len(objects)} chunks for tenant {name}") from exc
        failed = [
            ChunkFailure(part[pos][0], part[pos][1].chunk_id, err.message)
            for pos, err in sorted(result.errors.items())
        ]
        return len(part) - len(failed), failed

    def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int:
        name = weaviate_tenant(tenant)
        ids = list(dict.fromkeys(doc_ids))
        if not ids or not self._tenant_exists(name):
            return 0
        collection = self._collection().with_tenant(name)
        total = 0
        for start in range(0, len(ids), DELETE_IDS_PER_CALL):
            where = Filter.by_property("doc_id").contains_any(
                ids[start : start + DELETE_IDS_PER_CALL]
            )
            while True:
                with self._boundary(f"deleting documents for tenant {name}"):
                    result = collection.data.delete_many(where=where)
                if result.failed:
                    raise TransientError(
                        f"Weaviate failed to delete {result.failed} of {result.matches} objects "
                        f"for tenant {name}; retry the delete."
                    )
                total += result.successful
                if result.successful == 0 or result.matches < QUERY_MAXIMUM_RESULTS:
                    break
        return total

    def search(
        self,
        tenant: str,
        query: str,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> list[ScoredChunk]:
        name = weaviate_tenant(tenant)
        if not query.strip() or k <= 0 or not self._tenant_exists(name):
            return []
        matchable, where = where_filter(filters or {})
        if not matchable:
            return []  # a filter no chunk can match (e.g. a non-string doc_id)
        vector = self.embedder.embed([query])[0]
        fusion = HybridFusion.RANKED if self.fusion == "ranked" else HybridFusion.RELATIVE_SCORE
        collection = self._collection().with_tenant(name)
        with self._boundary(f"searching tenant {name}"):
            response = collection.query.hybrid(
                query,
                vector=[float(x) for x in vector],
                alpha=self.alpha,
                fusion_type=fusion,
                query_properties=list(SEARCH_PROPERTIES),
                target_vector=VECTOR_NAME,
                limit=k,
                filters=where,
                return_metadata=MetadataQuery(score=True),
                return_properties=list(RETURN_PROPERTIES),
            )
        return [
            ScoredChunk(
                chunk=chunk_from_properties(obj.properties),
                score=float(obj.metadata.score or 0.0),
                rank=rank,
                retriever="weaviate-hybrid",
            )
            for rank, obj in enumerate(response.objects, start=1)
        ]

    def count(self, tenant: str) -> int:
        name = weaviate_tenant(tenant)
        if not self._tenant_exists(name):
            return 0
        with self._boundary(f"counting tenant {name}"):
            result = self._collection().with_tenant(name).aggregate.over_all(total_count=True)
        return int(result.total_count or 0)

    def health(self) -> Health:
        """REST readiness and gRPC health, for worker readiness probes. Never raises."""
        ep = self.endpoint
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        detail = []
        try:
            res = httpx.get(f"{ep.url}/v1/.well-known/ready", headers=headers, timeout=5.0)
            rest = res.status_code == 200
            if not rest:
                detail.append(f"REST ready answered {res.status_code}")
        except httpx.HTTPError as exc:
            rest = False
            detail.append(f"REST unreachable: {short(exc)}")
        grpc_ok = self._grpc_serving(5.0)
        if not grpc_ok:
            detail.append(f"gRPC {ep.grpc_host}:{ep.grpc_port} not serving")
        return Health(rest and grpc_ok, rest, grpc_ok, "; ".join(detail))

    def drop_collection(self) -> None:
        """Delete the whole collection, every tenant's data with it. For tests and teardown."""
        with self._boundary(f"deleting collection {self.collection_name}"):
            self._connected().collections.delete(self.collection_name)
        self.close()

    def close(self) -> None:
        with self._lock:
            client, pid = self._client, self._pid
            self._client, self._pid = None, None
            self._tenants.clear()
        if client is not None and pid == os.getpid():
            client.close()


__all__ = ["MIN_VERSION", "Health", "WeaviateStore", "translate"]

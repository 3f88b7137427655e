"""The documents registry and the ingest ledger, in Redis: what the gateway lists and the
ingest workers write.

Keys (under the deployment's prefix):
- ``docs:{tenant}``        hash doc_id -> DocumentRecord JSON (the registry)
- ``docs:{tenant}:ids``    sorted set of doc ids, score 0 (lexicographic pages)
- ``docs:{tenant}:bytes``  the tenant's stored bytes (quota)
- ``ingest:{id}:record``   IngestRecord JSON; ``ingest:{id}:events`` its progress stream
- ``ingest:{id}:blob:{n}`` an uploaded file's bytes until the worker has read them

Blobs are written and read in pieces (``APPEND`` / ``GETRANGE``) so neither side holds a
whole file in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import redis

from schemas import DocumentRecord, FileOutcome, IngestRecord

PIECE = 1024 * 1024


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class DocumentRegistry:
    def __init__(self, client: redis.Redis, prefix: str = "ragrelay") -> None:
        self.redis = client
        self.prefix = prefix

    def _docs(self, tenant: str) -> str:
        return f"{self.prefix}:docs:{tenant}"

    # --- the registry ------------------------------------------------------------------
    def get(self, tenant: str, doc_id: str) -> DocumentRecord | None:
        raw = self.redis.hget(self._docs(tenant), doc_id)
        return None if raw is None else DocumentRecord.model_validate_json(raw)

    def put(self, record: DocumentRecord) -> None:
        key = self._docs(record.tenant)
        old = self.get(record.tenant, record.doc_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, record.doc_id, record.to_json())
        pipe.zadd(f"{key}:ids", {record.doc_id: 0})
        pipe.incrby(f"{key}:bytes", record.size - (old.size if old else 0))
        pipe.execute()

    def remove(self, tenant: str, doc_id: str) -> DocumentRecord | None:
        old = self.get(tenant, doc_id)
        if old is None:
            return None
        key = self._docs(tenant)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(key, doc_id)
        pipe.zrem(f"{key}:ids", doc_id)
        pipe.incrby(f"{key}:bytes", -old.size)
        pipe.execute()
        return old

    def count(self, tenant: str) -> int:
        return int(self.redis.hlen(self._docs(tenant)))

    def stored_bytes(self, tenant: str) -> int:
        raw = self.redis.get(f"{self._docs(tenant)}:bytes")
        return int(raw) if raw is not None else 0

    def page(self, tenant: str, *, after: str | None, limit: int) -> list[DocumentRecord]:
        """Up to ``limit`` records in doc-id order, starting after ``after``."""
        low = f"({after}" if after else "-"
        ids = [
            _s(i) for i in self.redis.zrangebylex(f"{self._docs(tenant)}:ids", low, "+", 0, limit)
        ]
        if not ids:
            return []
        raws = self.redis.hmget(self._docs(tenant), ids)
        return [DocumentRecord.model_validate_json(r) for r in raws if r is not None]

    def all_ids(self, tenant: str) -> list[str]:
        return [_s(i) for i in self.redis.zrange(f"{self._docs(tenant)}:ids", 0, -1)]

    # --- ingests -------------------------------------------------------------------------
    def _ingest(self, ingest_id: str) -> str:
        return f"{self.prefix}:ingest:{ingest_id}"

    def events_key(self, ingest_id: str) -> str:
        return f"{self._ingest(ingest_id)}:events"

    def save_ingest(self, record: IngestRecord, *, ttl_s: int) -> None:
        self.redis.set(f"{self._ingest(record.ingest_id)}:record", record.to_json(), ex=ttl_s)

    def ingest(self, ingest_id: str) -> IngestRecord | None:
        raw = self.redis.get(f"{self._ingest(ingest_id)}:record")
        return None if raw is None else IngestRecord.model_validate_json(raw)

    def event(self, ingest_id: str, kind: str, data: str, *, ttl_s: int) -> None:
        key = self.events_key(ingest_id)
        self.redis.xadd(key, {"type": kind, "data": data}, maxlen=10_000, approximate=True)
        self.redis.expire(key, ttl_s)

    def outcome(self, record: IngestRecord, outcome: FileOutcome, *, ttl_s: int) -> None:
        record.files.append(outcome)
        self.save_ingest(record, ttl_s=ttl_s)
        self.event(record.ingest_id, "file", outcome.to_json(), ttl_s=ttl_s)

    # --- blobs ---------------------------------------------------------------------------
    def blob_key(self, ingest_id: str, n: int) -> str:
        return f"{self._ingest(ingest_id)}:blob:{n}"

    def put_blob(self, key: str, fh: IO[bytes], *, ttl_s: int) -> int:
        self.redis.delete(key)
        size = 0
        while piece := fh.read(PIECE):
            self.redis.append(key, piece)
            size += len(piece)
        if size == 0:
            self.redis.set(key, b"")
        self.redis.expire(key, ttl_s)
        return size

    def read_blob(self, key: str, dest: Path) -> int:
        """Copy the blob to ``dest`` in pieces; -1 when it has expired or never existed."""
        if not self.redis.exists(key):
            return -1
        size = 0
        with dest.open("wb") as out:
            for piece in self._pieces(key):
                out.write(piece)
                size += len(piece)
        return size

    def _pieces(self, key: str) -> Iterator[bytes]:
        start = 0
        while True:
            piece = self.redis.getrange(key, start, start + PIECE - 1)
            if isinstance(piece, str):  # a client with decode_responses=True
                piece = piece.encode("utf-8", "surrogateescape")
            if not piece:
                return
            yield piece
            start += len(piece)

    def drop_blob(self, key: str) -> None:
        self.redis.delete(key)


def now() -> float:
    return time.time()

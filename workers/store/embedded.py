"""The embedded document store: one SQLite file on disk, BM25 keyword search via FTS5.

Writes are transactional (a failed ingest leaves nothing half-written); several worker
processes may read and write the same file (SQLite WAL mode).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas import Chunk, ScoredChunk

_TOKEN = re.compile(r"[A-Za-z0-9]+")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    tenant TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (tenant, chunk_id)
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (tenant, doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, text, content='chunks', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
END;
"""


def fts_query(text: str) -> str:
    """An FTS5 OR-query of the text's terms, each quoted so no term is read as syntax."""
    terms = dict.fromkeys(t.lower() for t in _TOKEN.findall(text))
    return " OR ".join(f'"{t}"' for t in terms)


class EmbeddedStore:
    """A :class:`workers.ports.DocumentStore` in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def upsert(self, tenant: str, chunks: Sequence[Chunk]) -> int:
        conn = self._conn()
        with conn:
            for chunk in chunks:
                conn.execute(
                    "DELETE FROM chunks WHERE tenant = ? AND chunk_id = ?",
                    (tenant, chunk.chunk_id),
                )
                conn.execute(
                    "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant,
                        chunk.chunk_id,
                        chunk.doc_id,
                        chunk.title,
                        chunk.text,
                        chunk.source,
                        chunk.chunk_index,
                        json.dumps(chunk.metadata),
                    ),
                )
        return len(chunks)

    def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int:
        conn = self._conn()
        with conn:
            total = 0
            for doc_id in doc_ids:
                cur = conn.execute(
                    "DELETE FROM chunks WHERE tenant = ? AND doc_id = ?", (tenant, doc_id)
                )
                total += cur.rowcount
        return total

    def search(
        self,
        tenant: str,
        query: str,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> list[ScoredChunk]:
        match = fts_query(query)
        if not match:
            return []
        rows = self._conn().execute(
            """
            SELECT c.chunk_id, c.doc_id, c.title, c.text, c.source, c.chunk_index, c.metadata,
                   bm25(chunks_fts, 0.5, 1.0) AS score
            FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid
            WHERE chunks_fts MATCH ? AND c.tenant = ?
            ORDER BY score LIMIT ?
            """,
            (match, tenant, k * 4 if filters else k),
        ).fetchall()
        hits: list[ScoredChunk] = []
        for chunk_id, doc_id, title, text, source, index, meta, score in rows:
            chunk = Chunk(
                chunk_id=chunk_id,
                doc_id=doc_id,
                title=title,
                text=text,
                source=source,
                chunk_index=index,
                metadata=json.loads(meta),
            )
            if filters and not _matches(chunk, filters):
                continue
            hits.append(
                ScoredChunk(chunk=chunk, score=-float(score), rank=len(hits) + 1, retriever="bm25")
            )
            if len(hits) == k:
                break
        return hits

    def count(self, tenant: str) -> int:
        row = self._conn().execute(
            "SELECT COUNT(*) FROM chunks WHERE tenant = ?", (tenant,)
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _matches(chunk: Chunk, filters: Mapping[str, Any]) -> bool:
    for key, want in filters.items():
        if key in ("doc_id", "source"):
            have = getattr(chunk, key)
        else:
            have = chunk.metadata.get(key)
        if have != want:
            return False
    return True

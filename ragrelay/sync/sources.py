"""The two sync sources: a directory tree and a PostgreSQL query.

A directory file's doc id is its path relative to the root (characters outside
``[A-Za-z0-9_.@-]`` become ``_``, ``/`` becomes ``__``), its hash the sha256 of its bytes.
A row's doc id is its id column; with an ``updated`` column, only rows whose value moved
since the last run are read in full (the id scan still runs every time: deletions).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bus.documents import DocumentRegistry
from bus.errors import UsageError
from ragrelay.corpus import PARSED
from ragrelay.sync.engine import Candidate
from ragrelay.sync.manifest import Manifest
from schemas import DocumentItem

DIR_SUFFIXES = (*PARSED, ".md", ".markdown", ".txt", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def dir_doc_id(rel: str) -> str:
    parts = [re.sub(r"[^A-Za-z0-9_.@-]+", "_", p) for p in rel.split("/")]
    return "__".join(parts)[:200]


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while piece := fh.read(1024 * 1024):
            digest.update(piece)
    return digest.hexdigest()


def dir_candidates(root: Path, source: str) -> list[Candidate]:
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    out: list[Candidate] = []
    seen: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() not in DIR_SUFFIXES or any(
            part.startswith(".") for part in rel.split("/")
        ):
            continue
        doc_id = dir_doc_id(rel)
        if doc_id in seen:
            raise UsageError(f"{rel} and {seen[doc_id]} map to the same doc id {doc_id!r}")
        seen[doc_id] = rel
        out.append(Candidate(doc_id, _file_hash(path), None, _file_item(path, rel, doc_id, source)))
    return out


def _file_item(path: Path, rel: str, doc_id: str, source: str) -> Any:
    def build(registry: DocumentRegistry, ingest_id: str, n: int) -> DocumentItem:
        key = registry.blob_key(ingest_id, n)
        with path.open("rb") as fh:
            size = registry.put_blob(key, fh, ttl_s=24 * 3600)
        return DocumentItem(
            doc_id=doc_id,
            name=path.name,
            blob_key=key,
            size=size,
            content_hash=_file_hash(path),
            source=source,
            metadata={"path": rel},
        )

    return build


@dataclass(frozen=True)
class PgQuery:
    dsn: str
    query: str
    id_column: str
    text_column: str
    title_column: str | None = None
    updated_column: str | None = None
    metadata_columns: tuple[str, ...] = ()


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UsageError(f"column {name!r}: expected a plain SQL identifier")
    return f'"{name}"'


def pg_candidates(
    q: PgQuery, manifest: Manifest, source: str
) -> tuple[list[Candidate], list[str], set[str]]:
    """(rows that may have changed, ids known unchanged, every id the query returns)."""
    import psycopg

    ident = _ident(q.id_column)
    try:
        with psycopg.connect(q.dsn, connect_timeout=10) as conn:
            if q.updated_column is None:
                rows = _fetch(conn, f"SELECT * FROM ({q.query}) AS src")
                return (
                    [_row_candidate(q, r, source) for r in rows],
                    [],
                    {str(r[q.id_column]) for r in rows},
                )
            upd = _ident(q.updated_column)
            ids = _fetch(conn, f"SELECT {ident}, {upd} FROM ({q.query}) AS src")
            all_ids = {str(r[q.id_column]) for r in ids}
            stale, unchanged = [], []
            for r in ids:
                doc_id, stamp = str(r[q.id_column]), _stamp(r[q.updated_column])
                old = manifest.entries.get(doc_id)
                if old is not None and old.updated == stamp:
                    unchanged.append(doc_id)
                else:
                    stale.append(r[q.id_column])
            rows = (
                _fetch(
                    conn,
                    f"SELECT * FROM ({q.query}) AS src WHERE {ident} = ANY(%s)",
                    (stale,),
                )
                if stale
                else []
            )
    except psycopg.Error as exc:
        raise UsageError(f"PostgreSQL: {str(exc).strip()}") from exc
    return [_row_candidate(q, r, source) for r in rows], unchanged, all_ids


def _fetch(conn: Any, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())


def _stamp(value: Any) -> str | None:
    return None if value is None else str(value)


def _row_candidate(q: PgQuery, row: dict[str, Any], source: str) -> Candidate:
    for col in (q.id_column, q.text_column, q.title_column, q.updated_column):
        if col is not None and col not in row:
            raise UsageError(f"the query returns no column {col!r} (it has {sorted(row)})")
    doc_id = str(row[q.id_column])
    text = "" if row[q.text_column] is None else str(row[q.text_column])
    title = str(row[q.title_column] or "") if q.title_column else ""
    meta = {c: _jsonable(row.get(c)) for c in q.metadata_columns}
    digest = hashlib.sha256(
        json.dumps([text, title, meta], sort_keys=True, default=str).encode()
    ).hexdigest()
    stamp = _stamp(row[q.updated_column]) if q.updated_column else None

    def build(registry: DocumentRegistry, ingest_id: str, n: int) -> DocumentItem:
        return DocumentItem(
            doc_id=doc_id,
            name=doc_id,
            title=title,
            text=text,
            size=len(text.encode()),
            content_hash=digest,
            source=source,
            metadata=meta,
        )

    return Candidate(doc_id, digest, stamp, build)


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)

"""The embedded document store: one SQLite file on disk with hybrid keyword + vector search.

SQLite holds everything (chunks, their analysed terms, their vectors) and is the only
truth: writes are single transactions (a failed ingest leaves nothing half-written) and
WAL mode lets several worker processes read and write one file. Each process keeps an
in-memory search index per tenant (a BM25 matrix and a vector matrix), rebuilt when the
tenant's ``generation`` counter, bumped by every write, changes.

Search is hybrid: BM25 over stemmed, stop-worded terms of the chunk *with its context*
(document title and section path), plus a lighter BM25 over adjacent term pairs, and a
dense score: the best cosine among the chunk's windows of two sentences (each embedded
with the title, kept in the ``sentence_vectors`` table) plus a quarter of the cosine of
the whole contextual chunk; the two are fused by summing min-max normalised scores. Then
one pseudo-relevance step from the best fused chunk: the query vector moves towards its
vector (Rocchio) and its heaviest new terms join the keyword query; both lists are
searched again and fused. See docs/benchmarks-retrieval.md for the
measurements behind the defaults.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bus.errors import ConfigError
from schemas import Chunk, ScoredChunk
from workers.embeddings import vector_space
from workers.ports import Embedder
from workers.store.batch import ChunkFailure, PartialBatchError, canonical_json, chunk_problem
from workers.store.bm25 import BM25Index, PairIndex, query_weights
from workers.store.fusion import normalized_fusion, rrf, zscore_fusion
from workers.store.prf import chunk_feedback, rm3_expand
from workers.text.tokenize import sentences, stems

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
    terms TEXT NOT NULL,
    embedder TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (tenant, chunk_id)
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (tenant, doc_id);
CREATE TABLE IF NOT EXISTS sentence_vectors (
    tenant TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    vectors BLOB NOT NULL,
    PRIMARY KEY (tenant, chunk_id)
);
CREATE INDEX IF NOT EXISTS sentence_vectors_doc ON sentence_vectors (tenant, doc_id);
CREATE TABLE IF NOT EXISTS generations (
    tenant TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
"""


def _context_head(chunk: Chunk) -> list[str]:
    """The chunk's title and section path (the lines before its text in the index)."""
    section = chunk.metadata.get("section")
    head = [chunk.title] if chunk.title else []
    if isinstance(section, str) and section:
        head.append(section)
    elif isinstance(section, list):
        head.append(" > ".join(str(s) for s in section))
    return head


def context_text(chunk: Chunk) -> str:
    """What is indexed and embedded for a chunk: title, section path, then the text."""
    return "\n".join([*_context_head(chunk), chunk.text])


def sentence_units(chunk: Chunk, *, window: int = 1, contextual: bool = True) -> list[str]:
    """The texts embedded for sentence-level matching: each run of ``window`` consecutive
    sentences of the chunk (stride 1), prefixed like :func:`context_text` with the title
    and section path. A chunk of at most ``window`` sentences has none (its chunk vector
    stands for it)."""
    parts = sentences(chunk.text)
    if len(parts) <= window:
        return []
    head = _context_head(chunk) if contextual else []
    return [
        "\n".join([*head, " ".join(parts[i : i + window])]) for i in range(len(parts) - window + 1)
    ]


@dataclass(frozen=True)
class SearchConfig:
    """Knobs of hybrid search. Defaults are the measured best on SciFact train."""

    mode: str = "hybrid"  # "hybrid" | "bm25" | "dense"
    fusion: str = "score"  # "score" (min-max normalised, summed) | "rrf"
    rrf_k: float = 60.0
    keyword_weight: float = 1.0
    dense_weight: float = 1.0
    depth: int = 100  # candidates taken from each retriever before fusion
    prf: bool = False  # RM3 expansion of the BM25 query from its own top documents
    prf_docs: int = 10
    prf_terms: int = 10
    prf_original_weight: float = 0.5
    contextual: bool = True  # index title + section path with each chunk
    # second pass: the fused first-pass top ``feedback_docs`` feed RM3 (keyword side) and
    # Rocchio (dense side: q + beta * mean of their vectors), then both are fused again
    feedback: bool = False
    feedback_docs: int = 5
    rocchio_beta: float = 0.5
    k1: float = 0.9
    b: float = 0.4
    # BM25 over adjacent stem pairs, added to the keyword score with this weight (0: off,
    # and the pair index is not built)
    bigram_weight: float = 0.2
    # dense-side Rocchio in hybrid mode (ignored when ``feedback`` is on): the query vector
    # + beta * mean vector of the fused top ``dense_feedback_docs`` chunks is searched
    # again and replaces the dense list (0: off, and so is the keyword feedback below)
    dense_feedback_docs: int = 1
    dense_feedback_beta: float = 0.3
    # with the dense step, the keyword side also takes feedback from the fused best chunk:
    # its ``keyword_feedback_terms`` heaviest new terms (tf x idf) join the BM25 query with
    # ``keyword_feedback_gain`` x the query's weight, and that list replaces the first (0: off)
    keyword_feedback_terms: int = 5
    keyword_feedback_gain: float = 0.1
    # sentence-level dense matching: at ingest each chunk's runs of ``sentence_window``
    # consecutive sentences (with its title) are embedded too, and the dense score of a
    # chunk is its best window's cosine + ``sentence_chunk_mix`` x its chunk cosine (0: off,
    # chunk vectors only). A chunk without window vectors (at most ``sentence_window``
    # sentences, or written without them) counts its chunk vector as its one window; a
    # tenant without any is searched by chunk vectors alone, as before.
    sentence_window: int = 2
    sentence_chunk_mix: float = 0.25
    # the dense feedback step re-scores windows only of the chunks most likely to make its
    # top ``depth``: the ``dense_feedback_candidates`` best by an estimate (each chunk's
    # first-pass best window moved by its chunk vector's cosine to the feedback), so a
    # search reads the window vectors once instead of twice (0: every window, exact)
    dense_feedback_candidates: int = 400


@dataclass
class _Index:
    generation: int
    rows: list[tuple[str, str, str, str, str, int, str]]
    bm25: BM25Index
    pairs: PairIndex | None  # None when bigram_weight is 0
    doc_terms: list[list[str]]
    vectors: npt.NDArray[np.float32]
    embedders: set[str]
    # sentence-window vectors of all chunks in row order (empty when sentence_window is
    # 0); chunk i owns the rows from part_starts[i] up to the next start
    parts: npt.NDArray[np.float32]
    part_starts: npt.NDArray[np.int64]


class EmbeddedStore:
    """A :class:`workers.ports.DocumentStore` in one SQLite file.

    ``embedder`` defaults to :func:`workers.embeddings.load_embedder` ``("auto")`` (loaded on
    first use, its model cache beside the store file).
    """

    def __init__(
        self,
        path: Path,
        embedder: Embedder | None = None,
        *,
        config: SearchConfig | None = None,
        model_cache: Path | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.config = config or SearchConfig()
        self._embedder = embedder
        self._model_cache = model_cache or path.parent / "models"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._indexes: dict[str, _Index] = {}
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    # --- plumbing -----------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from workers.embeddings import load_embedder

            self._embedder = load_embedder("auto", cache_dir=self._model_cache)
        return self._embedder

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _terms(self, chunk: Chunk) -> str:
        text = context_text(chunk) if self.config.contextual else chunk.text
        return " ".join(stems(text))

    def _bump(self, conn: sqlite3.Connection, tenant: str) -> None:
        conn.execute(
            "INSERT INTO generations VALUES (?, 1) "
            "ON CONFLICT(tenant) DO UPDATE SET generation = generation + 1",
            (tenant,),
        )

    # --- writes ---------------------------------------------------------------------------
    def upsert(self, tenant: str, chunks: Sequence[Chunk]) -> int:
        """Insert or replace chunks by ``chunk_id``; one transaction for the whole batch."""
        return self._write(tenant, chunks, replace_docs=False)

    def replace_documents(self, tenant: str, chunks: Sequence[Chunk]) -> int:
        """Like :meth:`upsert`, but first drops every stored chunk of the documents given,
        so a re-chunked document leaves no stale chunk behind (one transaction)."""
        return self._write(tenant, chunks, replace_docs=True)

    def _write(self, tenant: str, chunks: Sequence[Chunk], *, replace_docs: bool) -> int:
        """Write the good chunks in one transaction; list the bad ones (PartialBatchError)."""
        failures = [
            ChunkFailure(index=i, chunk_id=c.chunk_id, reason=problem)
            for i, c in enumerate(chunks)
            if (problem := chunk_problem(c)) is not None
        ]
        bad = {f.index for f in failures}
        chunks = [c for i, c in enumerate(chunks) if i not in bad]
        written = self._write_good(tenant, chunks, replace_docs=replace_docs)
        if failures:
            raise PartialBatchError(written, failures)
        return written

    def _write_good(self, tenant: str, chunks: Sequence[Chunk], *, replace_docs: bool) -> int:
        if not chunks:
            return 0
        embedder = self.embedder
        texts = [context_text(c) if self.config.contextual else c.text for c in chunks]
        vectors = self._embed(texts)  # before any write
        units = [
            sentence_units(c, window=self.config.sentence_window, contextual=self.config.contextual)
            if self.config.sentence_window > 0
            else []
            for c in chunks
        ]
        unit_vectors = self._embed([u for us in units for u in us])
        ends = np.cumsum([len(us) for us in units])
        parts = [
            (
                tenant,
                c.chunk_id,
                c.doc_id,
                unit_vectors[ends[i] - len(units[i]) : ends[i]].tobytes(),
            )
            for i, c in enumerate(chunks)
            if units[i]
        ]
        rows = [
            (
                tenant,
                c.chunk_id,
                c.doc_id,
                c.title,
                c.text,
                c.source,
                c.chunk_index,
                canonical_json(c.metadata),
                self._terms(c),
                embedder.name,
                vectors[i].tobytes(),
            )
            for i, c in enumerate(chunks)
        ]
        conn = self._conn()
        with conn:
            if replace_docs:
                docs = [(tenant, d) for d in dict.fromkeys(c.doc_id for c in chunks)]
                for table in ("chunks", "sentence_vectors"):
                    conn.executemany(f"DELETE FROM {table} WHERE tenant = ? AND doc_id = ?", docs)
            conn.executemany(
                "INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            conn.executemany(
                "DELETE FROM sentence_vectors WHERE tenant = ? AND chunk_id = ?",
                [(tenant, c.chunk_id) for c in chunks],
            )
            conn.executemany("INSERT INTO sentence_vectors VALUES (?, ?, ?, ?)", parts)
            self._bump(conn, tenant)
        return len(chunks)

    def _embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        embedder = self.embedder
        if not texts:
            return np.zeros((0, embedder.dim), dtype=np.float32)
        vectors = np.asarray(embedder.embed(texts), dtype=np.float32)
        if vectors.shape != (len(texts), embedder.dim):
            raise ConfigError(f"embedder {embedder.name} returned vectors of shape {vectors.shape}")
        return vectors

    def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int:
        conn = self._conn()
        with conn:
            total = 0
            for doc_id in doc_ids:
                cur = conn.execute(
                    "DELETE FROM chunks WHERE tenant = ? AND doc_id = ?", (tenant, doc_id)
                )
                total += cur.rowcount
                conn.execute(
                    "DELETE FROM sentence_vectors WHERE tenant = ? AND doc_id = ?", (tenant, doc_id)
                )
            if total:
                self._bump(conn, tenant)
        return total

    def rename_document(
        self, tenant: str, old: str, new: str, *, metadata: Mapping[str, Any] | None = None
    ) -> int:
        """Move ``old``'s chunks to doc id ``new`` with their vectors (nothing re-embedded;
        ``metadata`` merged into each chunk's), in one transaction; how many moved."""
        conn = self._conn()
        with conn:
            rows = conn.execute(
                "SELECT chunk_id, metadata FROM chunks WHERE tenant = ? AND doc_id = ?",
                (tenant, old),
            ).fetchall()
            if not rows:
                return 0
            for table in ("chunks", "sentence_vectors"):
                conn.execute(f"DELETE FROM {table} WHERE tenant = ? AND doc_id = ?", (tenant, new))
            for chunk_id, raw in rows:
                new_id = new + chunk_id[len(old) :]  # chunk ids are "doc_id#index"
                meta = {**json.loads(raw), **(metadata or {})}
                conn.execute(
                    "UPDATE chunks SET doc_id = ?, chunk_id = ?, metadata = ? "
                    "WHERE tenant = ? AND chunk_id = ?",
                    (new, new_id, canonical_json(meta), tenant, chunk_id),
                )
                conn.execute(
                    "UPDATE sentence_vectors SET doc_id = ?, chunk_id = ? "
                    "WHERE tenant = ? AND chunk_id = ?",
                    (new, new_id, tenant, chunk_id),
                )
            self._bump(conn, tenant)
        return len(rows)

    # --- reads ----------------------------------------------------------------------------
    def count(self, tenant: str) -> int:
        row = (
            self._conn()
            .execute("SELECT COUNT(*) FROM chunks WHERE tenant = ?", (tenant,))
            .fetchone()
        )
        return int(row[0])

    def _index(self, tenant: str) -> _Index | None:
        conn = self._conn()
        row = conn.execute(
            "SELECT generation FROM generations WHERE tenant = ?", (tenant,)
        ).fetchone()
        if row is None:
            return None
        generation = int(row[0])
        with self._lock:
            cached = self._indexes.get(tenant)
            if cached is not None and cached.generation == generation:
                return cached
        # read the generation and the rows in one read transaction, so they agree
        with conn:
            conn.execute("BEGIN")
            row = conn.execute(
                "SELECT generation FROM generations WHERE tenant = ?", (tenant,)
            ).fetchone()
            generation = int(row[0])
            data = conn.execute(
                "SELECT chunk_id, doc_id, title, text, source, chunk_index, metadata, terms, "
                "embedder, vector FROM chunks WHERE tenant = ? ORDER BY chunk_id",
                (tenant,),
            ).fetchall()
            stored = (
                dict(
                    conn.execute(
                        "SELECT chunk_id, vectors FROM sentence_vectors WHERE tenant = ?", (tenant,)
                    ).fetchall()
                )
                if self.config.sentence_window > 0
                else {}
            )
        doc_terms = [str(r[7]).split() for r in data]
        dim = len(data[0][9]) // 4 if data else 1
        vectors = (
            np.frombuffer(b"".join(r[9] for r in data), dtype=np.float32).reshape(len(data), dim)
            if data
            else np.zeros((0, dim), dtype=np.float32)
        )
        # a store (or tenant) written without windows keeps the plain chunk-vector search
        blobs = [stored.get(r[0], r[9]) for r in data] if stored else []
        parts = (
            np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, dim)
            if blobs
            else np.zeros((0, dim), dtype=np.float32)
        )
        part_starts = np.r_[0, np.cumsum([len(b) // (4 * dim) for b in blobs])][:-1]
        bm25 = BM25Index(doc_terms, k1=self.config.k1, b=self.config.b)
        index = _Index(
            generation=generation,
            rows=[(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6]) for r in data],
            bm25=bm25,
            pairs=(
                PairIndex(doc_terms, bm25, k1=self.config.k1, b=self.config.b)
                if self.config.bigram_weight > 0
                else None
            ),
            doc_terms=doc_terms,
            vectors=vectors,
            embedders={str(r[8]) for r in data},
            parts=parts,
            part_starts=part_starts.astype(np.int64),
        )
        with self._lock:
            self._indexes[tenant] = index
        return index

    def search(
        self,
        tenant: str,
        query: str,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> list[ScoredChunk]:
        if not query.strip() or k <= 0:
            return []
        index = self._index(tenant)
        if index is None or not index.rows:
            return []
        allowed = _filter_mask(index, filters) if filters else None
        cfg = self.config
        depth = max(k, cfg.depth)
        terms = stems(query)
        weights = query_weights(terms) if terms else {}
        qvec = self._query_vector(index, query) if cfg.mode in ("hybrid", "dense") else None
        first = _dense_scores(index, qvec) if qvec is not None else None
        pairs = self._pair_scores(index, terms)
        lists = self._lists(index, weights, pairs, first, depth, allowed)
        fused, retriever = self._fuse(lists)
        if cfg.feedback and fused:
            top = sorted(fused, key=lambda i: -fused[i])[: cfg.feedback_docs]
            if weights:
                weights = rm3_expand(
                    weights,
                    _one_hot(len(index.rows), top, fused),
                    index.doc_terms,
                    index.bm25,
                    fb_docs=cfg.feedback_docs,
                    fb_terms=cfg.prf_terms,
                    original_weight=cfg.prf_original_weight,
                )
            if qvec is not None:
                qvec = _rocchio(qvec, index.vectors[top], cfg.rocchio_beta)
                first = _dense_scores(index, qvec)
            fused, retriever = self._fuse(self._lists(index, weights, pairs, first, depth, allowed))
        elif (
            cfg.dense_feedback_docs > 0
            and first is not None
            and "bm25" in lists
            and "dense" in lists
        ):
            top = sorted(fused, key=lambda i: (-fused[i], i))[: cfg.dense_feedback_docs]
            moved = self._moved_dense(index, first, index.vectors[top], depth, allowed)
            lists["dense"] = _top(moved, depth, allowed, positive=False)
            if cfg.keyword_feedback_terms > 0 and cfg.keyword_feedback_gain > 0 and weights:
                expanded = chunk_feedback(
                    weights,
                    index.doc_terms[top[0]],
                    index.bm25,
                    n_terms=cfg.keyword_feedback_terms,
                    gain=cfg.keyword_feedback_gain,
                )
                keyword = self._keyword_list(index, expanded, pairs, depth, allowed)
                if keyword:
                    lists["bm25"] = keyword
            fused, retriever = self._fuse(lists)
        if not fused:
            return []
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        return [
            ScoredChunk(
                chunk=_chunk(index.rows[i]), score=float(fused[i]), rank=rank, retriever=retriever
            )
            for rank, i in enumerate(best, start=1)
        ]

    def _lists(
        self,
        index: _Index,
        weights: dict[str, float],
        pairs: npt.NDArray[np.float32] | None,
        dense: _DenseScores | None,
        depth: int,
        allowed: npt.NDArray[np.bool_] | None,
    ) -> dict[str, dict[int, float]]:
        """Each retriever's top ``depth`` chunks (index -> raw score), empty lists left out."""
        cfg = self.config
        lists: dict[str, dict[int, float]] = {}
        if cfg.mode in ("hybrid", "bm25") and weights:
            if cfg.prf:
                weights = rm3_expand(
                    weights,
                    index.bm25.score(weights),
                    index.doc_terms,
                    index.bm25,
                    fb_docs=cfg.prf_docs,
                    fb_terms=cfg.prf_terms,
                    original_weight=cfg.prf_original_weight,
                )
            lists["bm25"] = self._keyword_list(index, weights, pairs, depth, allowed)
        if dense is not None:
            lists["dense"] = _top(
                dense.combined(cfg.sentence_chunk_mix), depth, allowed, positive=False
            )
        return {name: lst for name, lst in lists.items() if lst}

    def _moved_dense(
        self,
        index: _Index,
        first: _DenseScores,
        feedback: npt.NDArray[np.float32],
        depth: int,
        allowed: npt.NDArray[np.bool_] | None,
    ) -> npt.NDArray[np.float32]:
        """Dense scores for the query moved towards the feedback chunks (:func:`_rocchio`),
        from the first pass's: cos(x, (q + b f) / n) = (cos(x, q) + b x.f) / n, so only x.f
        is new. Chunk vectors get it exactly; windows only within the best
        ``dense_feedback_candidates`` chunks by an estimate (their best first-pass window
        moved by their chunk's x.f), the others score -inf."""
        cfg = self.config
        beta = np.float32(cfg.dense_feedback_beta)
        mean = feedback.mean(axis=0)
        norm = np.float32(max(float(np.linalg.norm(first.qvec + beta * mean)), 1e-9))
        chunk_f = _cosines(index.vectors, mean)
        chunks = ((first.chunks + beta * chunk_f) / norm).astype(np.float32, copy=False)
        if first.windows is None or first.best is None:
            return chunks
        mix = np.float32(cfg.sentence_chunk_mix)
        n_candidates = max(cfg.dense_feedback_candidates, depth)
        if cfg.dense_feedback_candidates <= 0 or n_candidates >= len(chunks):
            windows = (first.windows + beta * _cosines(index.parts, mean)) / norm
            exact: npt.NDArray[np.float32] = (
                np.maximum.reduceat(windows, index.part_starts) + mix * chunks
            )
            return exact
        estimate = (first.best + beta * chunk_f) / norm + mix * chunks
        if allowed is not None:
            estimate = np.where(allowed, estimate, np.float32(-np.inf))
        cand = np.sort(np.argpartition(-estimate, n_candidates - 1)[:n_candidates])
        ends = np.r_[index.part_starts[1:], len(index.parts)]
        counts = ends[cand] - index.part_starts[cand]
        offsets = np.r_[0, np.cumsum(counts)[:-1]]
        rows = np.repeat(index.part_starts[cand] - offsets, counts) + np.arange(counts.sum())
        windows = (first.windows[rows] + beta * _cosines(index.parts[rows], mean)) / norm
        out = np.full(len(chunks), -np.inf, dtype=np.float32)
        out[cand] = np.maximum.reduceat(windows, offsets) + mix * chunks[cand]
        return out

    def _pair_scores(self, index: _Index, terms: list[str]) -> npt.NDArray[np.float32] | None:
        """The weighted pair score of the query's own ``terms`` (once per search), if any."""
        if index.pairs is None or len(terms) < 2:
            return None
        out: npt.NDArray[np.float32] = np.float32(self.config.bigram_weight) * index.pairs.score(
            terms
        )
        return out

    def _keyword_list(
        self,
        index: _Index,
        weights: Mapping[str, float],
        pairs: npt.NDArray[np.float32] | None,
        depth: int,
        allowed: npt.NDArray[np.bool_] | None,
    ) -> dict[int, float]:
        """BM25 of ``weights`` plus the query's pair scores: the top ``depth`` chunks."""
        keyword = index.bm25.score(weights)
        if pairs is not None:
            keyword = keyword + pairs
        return _top(keyword, depth, allowed, positive=True)

    def _fuse(self, named: Mapping[str, dict[int, float]]) -> tuple[dict[int, float], str]:
        cfg = self.config
        if not named:
            return {}, ""
        if len(named) == 1:
            name, only = next(iter(named.items()))
            return only, name
        lists = [named["bm25"], named["dense"]]
        fusion_weights = [cfg.keyword_weight, cfg.dense_weight]
        if cfg.fusion == "score":
            return normalized_fusion(lists, weights=fusion_weights), "hybrid"
        if cfg.fusion == "zscore":
            return zscore_fusion(lists, weights=fusion_weights), "hybrid"
        rankings = [sorted(lst, key=lambda i, s=lst: -s[i]) for lst in lists]  # type: ignore[misc]
        return rrf(rankings, k=cfg.rrf_k, weights=fusion_weights), "hybrid"

    def _query_vector(self, index: _Index, query: str) -> npt.NDArray[np.float32]:
        embedder = self.embedder
        if {vector_space(n) for n in index.embedders} - {vector_space(embedder.name)}:
            raise ConfigError(
                f"this store's vectors were made by {sorted(index.embedders)}, not "
                f"{embedder.name}: re-ingest, or open the store with the same embedder"
            )
        qvec: npt.NDArray[np.float32] = np.asarray(embedder.embed([query]), dtype=np.float32)[0]
        return qvec

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


@dataclass
class _DenseScores:
    """One query vector's cosines: with every chunk vector, and (with sentence windows)
    with every window and each chunk's best window."""

    qvec: npt.NDArray[np.float32]
    chunks: npt.NDArray[np.float32]
    windows: npt.NDArray[np.float32] | None
    best: npt.NDArray[np.float32] | None

    def combined(self, mix: float) -> npt.NDArray[np.float32]:
        """Each chunk's dense score: its cosine, or its best window's + ``mix`` x its own."""
        if self.best is None:
            return self.chunks
        out: npt.NDArray[np.float32] = self.best + np.float32(mix) * self.chunks
        return out


def _dense_scores(index: _Index, qvec: npt.NDArray[np.float32]) -> _DenseScores:
    chunks = _cosines(index.vectors, qvec)
    if not len(index.parts):
        return _DenseScores(qvec, chunks, None, None)
    windows = _cosines(index.parts, qvec)
    return _DenseScores(qvec, chunks, windows, np.maximum.reduceat(windows, index.part_starts))


def _top(
    scores: npt.NDArray[np.float32],
    depth: int,
    allowed: npt.NDArray[np.bool_] | None,
    *,
    positive: bool,
) -> dict[int, float]:
    values = scores.astype(np.float64)
    if allowed is not None:
        values = np.where(allowed, values, -np.inf)
    if positive:
        values = np.where(values > 0, values, -np.inf)
    n = min(depth, len(values))
    part = np.argpartition(-values, n - 1)[:n] if n < len(values) else np.arange(len(values))
    return {int(i): float(values[i]) for i in part if np.isfinite(values[i])}


def _cosines(
    vectors: npt.NDArray[np.float32], qvec: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Dot products of unit vectors with a unit query, on the calling thread.

    Not ``vectors @ qvec``: NumPy hands that to the BLAS library's thread pool, which on a
    busy 2-core machine spent 6.2 ms CPU per 7,145 x 384 product against 1.0 ms for this
    single-threaded ``einsum`` (0.5 ms for BLAS pinned to one thread, a process-wide setting
    the store does not own); see docs/benchmarks-retrieval.md, session 3.
    """
    out: npt.NDArray[np.float32] = np.einsum("ij,j->i", vectors, qvec)
    return out


def _rocchio(
    qvec: npt.NDArray[np.float32], feedback: npt.NDArray[np.float32], beta: float
) -> npt.NDArray[np.float32]:
    """The unit query vector moved by ``beta`` times the mean of the feedback vectors."""
    moved = qvec + beta * feedback.mean(axis=0)
    out: npt.NDArray[np.float32] = (moved / max(float(np.linalg.norm(moved)), 1e-9)).astype(
        np.float32
    )
    return out


def _one_hot(n: int, top: list[int], scores: Mapping[int, float]) -> npt.NDArray[np.float32]:
    """A score vector holding only the feedback documents' (fused) scores."""
    out = np.zeros(n, dtype=np.float32)
    for i in top:
        out[i] = max(float(scores[i]), 1e-6)
    return out


def _chunk(row: tuple[str, str, str, str, str, int, str]) -> Chunk:
    chunk_id, doc_id, title, text, source, index, meta = row
    return Chunk(
        chunk_id=chunk_id,
        doc_id=doc_id,
        title=title,
        text=text,
        source=source,
        chunk_index=index,
        metadata=json.loads(meta),
    )


def _filter_mask(index: _Index, filters: Mapping[str, Any]) -> npt.NDArray[np.bool_]:
    mask = np.ones(len(index.rows), dtype=bool)
    metas: list[dict[str, Any]] | None = None
    for key, want in filters.items():
        if key == "doc_id":
            mask &= np.array([r[1] == want for r in index.rows])
        elif key == "source":
            mask &= np.array([r[4] == want for r in index.rows])
        else:
            if metas is None:
                metas = [json.loads(r[6]) for r in index.rows]
            mask &= np.array([m.get(key) == want for m in metas])
    return mask

"""An in-memory BM25 index over analysed terms: pure, no I/O.

Documents are given as lists of terms (stemmed, stop words removed). Scores are Okapi
BM25 with Lucene's idf ``log(1 + (N - df + 0.5) / (df + 0.5))``; query terms may carry
weights (RM3-style expanded queries). The same index over :func:`bigrams` of the terms
scores adjacent pairs (a phrase / proximity signal the store adds to the unigram score).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse  # type: ignore[import-untyped,unused-ignore]

FloatArray = npt.NDArray[np.float32]


def _bm25_columns(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    tf: FloatArray,
    lengths: FloatArray,
    n_cols: int,
    k1: float,
    b: float,
) -> tuple[Any, FloatArray, FloatArray]:
    """The (docs x terms) matrix of BM25 term weights (CSC), the idf and df of each column."""
    avg = float(lengths.mean()) if len(lengths) and float(lengths.mean()) > 0 else 1.0
    norm = k1 * (1.0 - b + b * lengths[rows] / avg)
    weights = tf * (k1 + 1.0) / (tf + norm)
    matrix = sparse.csc_matrix(
        (weights, (rows, cols)), shape=(len(lengths), max(1, n_cols)), dtype=np.float32
    )
    df = np.diff(matrix.indptr).astype(np.float32)
    idf = np.log(1.0 + (len(lengths) - df + 0.5) / (df + 0.5)).astype(np.float32)
    return matrix, idf, df


class BM25Index:
    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = 0.9, b: float = 0.4) -> None:
        self.k1 = k1
        self.b = b
        self.n_docs = len(docs)
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for row, terms in enumerate(docs):
            lengths[row] = len(terms)
            for term, freq in Counter(terms).items():
                col = vocab.setdefault(term, len(vocab))
                rows.append(row)
                cols.append(col)
                tfs.append(float(freq))
        self.vocab = vocab
        self.matrix, self.idf, self.doc_freq = _bm25_columns(
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            np.asarray(tfs, dtype=np.float32),
            lengths,
            len(vocab),
            k1,
            b,
        )

    def score(self, query: Mapping[str, float]) -> FloatArray:
        """BM25 score of every document for a weighted bag of query terms."""
        scores = np.zeros(self.n_docs, dtype=np.float32)
        for term, weight in query.items():
            col = self.vocab.get(term)
            if col is None or weight == 0:
                continue
            start, end = self.matrix.indptr[col], self.matrix.indptr[col + 1]
            rows = self.matrix.indices[start:end]
            scores[rows] += weight * self.idf[col] * self.matrix.data[start:end]
        return scores

    def idf_of(self, term: str) -> float:
        col = self.vocab.get(term)
        return float(self.idf[col]) if col is not None else math.log(1.0 + self.n_docs + 0.5)


def query_weights(terms: Sequence[str]) -> dict[str, float]:
    """A bag of query terms (repeats add weight), as BM25 scores repeated terms."""
    return {t: float(c) for t, c in Counter(terms).items()}


class PairIndex:
    """BM25 over adjacent pairs of terms (``heart attack`` scores as one term), a phrase and
    proximity signal beside the unigram index.

    A pair is keyed by its two columns in the unigram index (one int64 per distinct pair), so
    no string vocabulary is kept: on SciFact's 441k distinct pairs this takes ~15 MiB where
    a :class:`BM25Index` over ``"a_b"`` strings took ~63 MiB. Stop words are already gone from
    the terms, so a pair may span them. ``docs`` must be the documents ``unigrams`` was built
    from.
    """

    def __init__(
        self,
        docs: Sequence[Sequence[str]],
        unigrams: BM25Index,
        *,
        k1: float = 0.9,
        b: float = 0.4,
    ) -> None:
        self.n_docs = len(docs)
        self._vocab = unigrams.vocab
        self._width = max(1, len(unigrams.vocab))
        key_parts: list[npt.NDArray[np.int64]] = []
        row_parts: list[npt.NDArray[np.int64]] = []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for row, terms in enumerate(docs):
            if len(terms) < 2:
                continue
            ids = np.fromiter((self._vocab[t] for t in terms), dtype=np.int64, count=len(terms))
            key_parts.append(ids[:-1] * self._width + ids[1:])
            row_parts.append(np.full(len(terms) - 1, row, dtype=np.int64))
            lengths[row] = len(terms) - 1
        keys = np.concatenate(key_parts) if key_parts else np.zeros(0, dtype=np.int64)
        rows = np.concatenate(row_parts) if row_parts else np.zeros(0, dtype=np.int64)
        order = np.lexsort((rows, keys))
        keys, rows = keys[order], rows[order]
        first = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]) | (rows[1:] != rows[:-1])])
        first = first[: len(keys)]  # no pairs at all (e.g. a tenant's last doc deleted)
        tf = np.diff(np.r_[first, len(keys)]).astype(np.float32)
        self.keys, cols = np.unique(keys[first], return_inverse=True)
        self.matrix, self.idf, self.doc_freq = _bm25_columns(
            rows[first], cols.astype(np.int64), tf, lengths, len(self.keys), k1, b
        )

    def score(self, terms: Sequence[str]) -> FloatArray:
        """BM25 score of every document for the adjacent pairs of the query's terms."""
        scores = np.zeros(self.n_docs, dtype=np.float32)
        ids = [self._vocab.get(t) for t in terms]
        wanted = Counter(
            a * self._width + b
            for a, b in itertools.pairwise(ids)
            if a is not None and b is not None
        )
        for key, weight in wanted.items():
            col = int(np.searchsorted(self.keys, key))
            if col == len(self.keys) or int(self.keys[col]) != key:
                continue
            start, end = self.matrix.indptr[col], self.matrix.indptr[col + 1]
            scores[self.matrix.indices[start:end]] += (
                weight * self.idf[col] * self.matrix.data[start:end]
            )
        return scores

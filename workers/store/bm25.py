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

import numpy as np
import numpy.typing as npt
from scipy import sparse  # type: ignore[import-untyped,unused-ignore]

FloatArray = npt.NDArray[np.float32]


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
        avg = float(lengths.mean()) if len(docs) and float(lengths.mean()) > 0 else 1.0
        tf = np.asarray(tfs, dtype=np.float32)
        row_idx = np.asarray(rows, dtype=np.int64)
        norm = k1 * (1.0 - b + b * lengths[row_idx] / avg)
        weights = tf * (k1 + 1.0) / (tf + norm)
        self.matrix = sparse.csc_matrix(
            (weights, (rows, cols)), shape=(len(docs), max(1, len(vocab))), dtype=np.float32
        )
        df = np.diff(self.matrix.indptr).astype(np.float32)
        self.idf = np.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.doc_freq = df

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


def bigrams(terms: Sequence[str]) -> list[str]:
    """Adjacent pairs of analysed terms as single terms (``"heart attack"`` ->
    ``"heart_attack"``). Stop words are already gone, so pairs span them."""
    return [f"{a}_{b}" for a, b in itertools.pairwise(terms)]

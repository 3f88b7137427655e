"""RM3 pseudo-relevance feedback over the BM25 index: pure functions.

The top ``fb_docs`` documents of the first-pass ranking are taken as relevant; each
contributes its term distribution weighted by its (normalised) score; the ``fb_terms``
heaviest terms form a feedback model, interpolated with the original query
(``original_weight``), as in Lavrenko & Croft's RM3 (Anserini's defaults: 10 docs,
10 terms, 0.5).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from workers.store.bm25 import BM25Index


def rm3_expand(
    query: Mapping[str, float],
    scores: npt.NDArray[np.float32],
    doc_terms: Sequence[Sequence[str]],
    index: BM25Index,
    *,
    fb_docs: int = 10,
    fb_terms: int = 10,
    original_weight: float = 0.5,
) -> dict[str, float]:
    n = min(fb_docs, int((scores > 0).sum()))
    if n == 0:
        return dict(query)
    top = np.argsort(-scores)[:n]
    raw = scores[top].astype(np.float64)
    weights = raw / raw.sum()
    model: dict[str, float] = {}
    max_df = 0.5 * index.n_docs
    for w, row in zip(weights, top, strict=True):
        terms = doc_terms[int(row)]
        if not terms:
            continue
        counts = Counter(terms)
        for term, c in counts.items():
            col = index.vocab.get(term)
            if col is not None and index.doc_freq[col] > max_df:
                continue  # near-stop words carry no feedback
            model[term] = model.get(term, 0.0) + float(w) * c / len(terms)
    feedback = dict(sorted(model.items(), key=lambda kv: -kv[1])[:fb_terms])
    total_fb = sum(feedback.values()) or 1.0
    total_q = sum(query.values()) or 1.0
    out: dict[str, float] = {}
    for term, w in query.items():
        out[term] = original_weight * w / total_q
    for term, w in feedback.items():
        out[term] = out.get(term, 0.0) + (1 - original_weight) * w / total_fb
    # rescale so the expanded query's weights sum like the original's (BM25 scale kept)
    return {t: w * total_q for t, w in out.items()}


def chunk_feedback(
    query: Mapping[str, float],
    terms: Sequence[str],
    index: BM25Index,
    *,
    n_terms: int = 5,
    gain: float = 0.1,
) -> dict[str, float]:
    """The query plus the ``n_terms`` heaviest new terms (tf x idf) of one chunk ``terms``
    (the first pass's best hit), together weighing ``gain`` x the query's total weight
    (shared by tf x idf). Single-chunk feedback: a gentle counterpart of RM3, which over
    ten documents drifts on SciFact (docs/benchmarks-retrieval.md)."""
    counts = Counter(t for t in terms if t not in query)
    scored = sorted(((c * index.idf_of(t), t) for t, c in counts.items()), reverse=True)
    picked = [(s, t) for s, t in scored[:n_terms] if s > 0]
    out = dict(query)
    total = sum(s for s, _ in picked)
    if not picked or total <= 0:
        return out
    budget = gain * (sum(query.values()) or 1.0)
    for s, t in picked:
        out[t] = out.get(t, 0.0) + budget * s / total
    return out

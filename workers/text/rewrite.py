"""Query rewrites for the offline analysis: keywords, feedback expansion, decomposition."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from schemas import Chunk
from workers.text.tokenize import content_terms

_SPLIT = re.compile(r"\?\s+|;\s+|\band also\b|\bas well as\b", re.IGNORECASE)


def keyword_query(query: str) -> str:
    return " ".join(dict.fromkeys(content_terms(query)))


def decompose(query: str) -> list[str]:
    """Split a multi-part question into its parts (only when each part is substantial)."""
    parts = [p.strip(" ?.") for p in _SPLIT.split(query) if p and p.strip(" ?.")]
    if len(parts) < 2 or any(len(content_terms(p)) < 2 for p in parts):
        return []
    return [p + "?" for p in parts]


def expand_with_feedback(query: str, docs: Sequence[Chunk], *, terms: int = 6) -> str:
    """Pseudo-relevance feedback: add the terms most frequent in ``docs`` not in the query."""
    have = set(content_terms(query))
    counts: Counter[str] = Counter()
    for doc in docs:
        counts.update(t for t in content_terms(f"{doc.title} {doc.text}") if t not in have)
    extra = [t for t, _ in counts.most_common(terms) if len(t) > 2]
    return f"{query} {' '.join(extra)}".strip()


def rewrite_query(
    query: str,
    *,
    feedback: str | None = None,
    previous: Sequence[str] = (),
    feedback_docs: Sequence[Chunk] = (),
) -> list[str]:
    """The rewrites to retrieve with, original first, no duplicates, none already tried."""
    candidates = [query, *decompose(query)]
    kw = keyword_query(query)
    if kw and kw != query.lower():
        candidates.append(kw)
    if feedback:
        candidates.append(f"{kw} {keyword_query(feedback)}".strip())
    if feedback_docs:
        candidates.append(expand_with_feedback(query, feedback_docs))
    seen = {p.strip().lower() for p in previous} if feedback else set()
    out: list[str] = []
    for cand in candidates:
        key = cand.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(cand.strip())
    return out or [query]

"""Query rewrites for the offline analysis: keywords, feedback expansion, decomposition.

The retrieval stage runs one search per rewrite and the orchestrator fuses them (RRF), so
a rewrite earns its place only when it can find something the original cannot:

- the original query always comes first (fusion then never loses its ranking entirely);
- a keyword rewrite (stop words dropped) only for wordy questions, where dense retrieval
  of the bare keywords differs from the sentence;
- decomposition of multi-part questions ("Who founded X and when?") into parts;
- on a ``revise`` loop: the evaluator's feedback keywords, and RM3-style expansion with
  the terms that best characterise the documents already retrieved (``feedback_docs``).
  Bracketed parts of the feedback (``[guardrail flags: injection:...]``) are notes for the
  trace, not words to search for: they are left out.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from schemas import Chunk
from workers.text.tokenize import STOP_WORDS, content_terms, words

_SPLIT = re.compile(
    r"\?\s+|;\s+|\band also\b|\bas well as\b|,?\s+and\s+(?=(?:who|what|when|where|why|how|which)\b)",
    re.IGNORECASE,
)


_BRACKETED = re.compile(r"\[[^\]]*\]")


def keyword_query(query: str) -> str:
    return " ".join(dict.fromkeys(content_terms(query)))


def decompose(query: str) -> list[str]:
    """Split a multi-part question into its parts (only when each part is substantial)."""
    parts = [p.strip(" ?.") for p in _SPLIT.split(query) if p and p.strip(" ?.")]
    if len(parts) < 2 or any(len(content_terms(p)) < 1 for p in parts):
        return []
    if sum(len(content_terms(p)) >= 2 for p in parts) < 1:
        return []
    return [p + "?" for p in parts]


def expand_with_feedback(query: str, docs: Sequence[Chunk], *, terms: int = 6) -> str:
    """RM3-style: add the terms weighted highest in ``docs`` (term share times spread across the
    docs, docs earlier in the list count more), none already in the query."""
    have = set(content_terms(query))
    if not docs:
        return query
    doc_terms = [content_terms(f"{d.title} {d.text}") for d in docs]
    df: Counter[str] = Counter()
    for ts in doc_terms:
        df.update(set(ts))
    n = len(doc_terms)
    weight: dict[str, float] = {}
    for rank, ts in enumerate(doc_terms):
        if not ts:
            continue
        prior = 1.0 / (1 + rank)
        for term, count in Counter(ts).items():
            if term in have or len(term) <= 2 or term.isdigit():
                continue
            spread = df[term] / n  # a term in several feedback docs is on topic
            weight[term] = weight.get(term, 0.0) + prior * (count / len(ts)) * (0.5 + spread)
    if n > 2:  # a term in every doc may be a domain stop word: soften it
        weight = {t: w * (1.0 - 0.5 * math.isclose(df[t], n)) for t, w in weight.items()}
    extra = [t for t, _ in sorted(weight.items(), key=lambda kv: -kv[1])[:terms]]
    return f"{query} {' '.join(extra)}".strip()


def _wordy(query: str) -> bool:
    ws = words(query)
    return len(ws) >= 4 and sum(w in STOP_WORDS for w in ws) >= 2


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
    if kw and _wordy(query):
        candidates.append(kw)
    if feedback:
        candidates.append(f"{kw} {keyword_query(_BRACKETED.sub(' ', feedback))}".strip())
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

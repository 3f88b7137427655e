"""Extractive answering: the sentences of the context that best support an answer."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas import Chunk
from workers.text.tokenize import sentences, stems


@dataclass(frozen=True)
class Extract:
    answer: str
    short_answer: str | None
    quotes: list[tuple[str, str]] = field(default_factory=list)  # (chunk_id, sentence)
    score: float = 0.0


def score_sentence(query_stems: set[str], sentence: str, idf: dict[str, float]) -> float:
    terms = set(stems(sentence))
    if not terms:
        return 0.0
    overlap = query_stems & terms
    return sum(idf.get(t, 1.0) for t in overlap) / math.sqrt(len(terms) + 4)


def extract_answer(query: str, chunks: Sequence[Chunk], *, max_sentences: int = 2) -> Extract:
    """Pick the best-supported sentences (in rank order of their chunks), with their chunk ids."""
    q = set(stems(query))
    if not q or not chunks:
        return Extract(answer="", short_answer=None)
    df: dict[str, int] = {}
    for chunk in chunks:
        for t in set(stems(chunk.text)):
            df[t] = df.get(t, 0) + 1
    n = len(chunks)
    idf = {t: math.log(1 + n / c) for t, c in df.items()}
    scored: list[tuple[float, int, str, str]] = []
    for rank, chunk in enumerate(chunks):
        for sent in sentences(chunk.text):
            s = score_sentence(q, sent, idf) / (1 + 0.1 * rank)
            if s > 0:
                scored.append((s, rank, chunk.chunk_id, sent))
    if not scored:
        return Extract(answer="", short_answer=None)
    scored.sort(key=lambda x: -x[0])
    best = scored[:max_sentences]
    return Extract(
        answer=" ".join(s for _, _, _, s in best),
        short_answer=None,
        quotes=[(cid, s) for _, _, cid, s in best],
        score=best[0][0],
    )

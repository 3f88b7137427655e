"""Extractive answering: the sentence of the context that best answers, and a short span.

Each sentence of the retrieved chunks is scored by
- idf-weighted overlap with the question's stems (idf over the context's sentences), with a
  length normalisation, and a bonus for question bigrams found in order;
- whether it holds something of the kind the question asks for (a date for "when", a
  number for "how many", a name for "who"/"where") that the question does not already say;
- the rank of its chunk (retrieval already judged the chunks);
- optionally, the cosine similarity of sentence and question embeddings (``embedder``).

The answer is the best sentence, followed by a second one only when it is nearly as good
and the answer stays short. ``short_answer`` is the span of the asked-for kind nearest to
the question's words in the best sentence, when there is one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from schemas import Chunk
from workers.ports import Embedder
from workers.text.answer_types import answer_type, candidates
from workers.text.tokenize import sentences, stems, words


@dataclass(frozen=True)
class Extract:
    answer: str
    short_answer: str | None
    quotes: list[tuple[str, str]] = field(default_factory=list)  # (chunk_id, sentence)
    score: float = 0.0
    answer_type: str | None = None


@dataclass(frozen=True)
class _Sentence:
    chunk_rank: int
    chunk_id: str
    text: str
    stems: list[str]


def _bigrams(terms: Sequence[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(terms))


def score_sentence(query_stems: set[str], sentence: str, idf: dict[str, float]) -> float:
    """Lexical support of a sentence for a query (kept for callers of the first version)."""
    terms = set(stems(sentence))
    if not terms:
        return 0.0
    return sum(idf.get(t, 1.0) for t in query_stems & terms) / math.sqrt(len(terms) + 4)


def _lexical(q: set[str], q_bigrams: set[tuple[str, str]], sent: _Sentence,
             idf: dict[str, float]) -> float:
    terms = set(sent.stems)
    if not terms:
        return 0.0
    overlap = sum(idf.get(t, 1.0) for t in q & terms)
    total = sum(idf.get(t, 1.0) for t in q) or 1.0
    bigram = len(q_bigrams & _bigrams(sent.stems))
    return (overlap / total) * (1.0 + 0.15 * bigram) / (1.0 + 0.004 * max(0, len(terms) - 25))


def _type_bonus(kind: str | None, question: str, sentence: str) -> float:
    if kind is None:
        return 0.0
    q_words = set(words(question))
    for _, span in candidates(sentence, kind):
        if not set(words(span)) <= q_words:
            return 1.0
    return 0.0


def extract_answer(
    query: str,
    chunks: Sequence[Chunk],
    *,
    max_sentences: int = 2,
    embedder: Embedder | None = None,
    max_words: int = 40,
) -> Extract:
    """Pick the best-supported sentence(s), with their chunk ids, and a short answer."""
    q_terms = stems(query)
    q = set(q_terms)
    if not q or not chunks:
        return Extract(answer="", short_answer=None)
    pool = [
        _Sentence(rank, chunk.chunk_id, sent, stems(sent))
        for rank, chunk in enumerate(chunks)
        for sent in sentences(chunk.text)
    ]
    if not pool:
        return Extract(answer="", short_answer=None)
    df: dict[str, int] = {}
    for s in pool:
        for t in set(s.stems):
            df[t] = df.get(t, 0) + 1
    n = len(pool)
    idf = {t: math.log(1 + n / c) for t, c in df.items()}
    q_bigrams = _bigrams(q_terms)
    kind = answer_type(query)
    lexical = np.array([_lexical(q, q_bigrams, s, idf) for s in pool])
    scores = lexical.copy()
    scores += 0.15 * np.array([_type_bonus(kind, query, s.text) for s in pool])
    scores -= 0.1 * np.array([min(s.chunk_rank, 5) for s in pool])
    if embedder is not None:
        vecs = embedder.embed([query, *(s.text for s in pool)])
        scores += 0.8 * (vecs[1:] @ vecs[0])
    scores[lexical <= 0] -= 10.0  # a sentence sharing no word with the question is a last resort
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    best = order[0]
    if lexical[best] <= 0 and embedder is None:
        return Extract(answer="", short_answer=None)
    chosen = [best]
    for i in order[1:max_sentences]:
        total_words = sum(len(pool[j].text.split()) for j in chosen) + len(pool[i].text.split())
        if scores[i] >= 0.9 * scores[best] and total_words <= max_words:
            chosen.append(i)
    return Extract(
        answer=" ".join(pool[i].text for i in chosen),
        short_answer=_short_answer(query, kind, pool[best].text),
        quotes=[(pool[i].chunk_id, pool[i].text) for i in chosen],
        score=float(scores[best]),
        answer_type=kind,
    )


def _short_answer(question: str, kind: str | None, sentence: str) -> str | None:
    """The span of the asked-for kind closest to the question's words in the sentence."""
    if kind is None:
        return None
    q_words = set(words(question))
    q_stems = set(stems(question))
    anchors = [i for i, w in enumerate(sentence.split()) if set(stems(w)) & q_stems]
    best: tuple[float, str] | None = None
    for offset, span in candidates(sentence, kind):
        if not span or set(words(span)) <= q_words:
            continue
        position = len(sentence[:offset].split())
        distance = min((abs(position - a) for a in anchors), default=0)
        if best is None or distance < best[0]:
            best = (distance, span)
    return best[1] if best else None

"""Features of a candidate answer sentence for a question (all lexical, no model).

One row per sentence of the retrieved context. The columns are generic evidence that a
sentence answers a question, not anything about one data set:

- ``coverage``: idf-weighted share of the question's stems the sentence holds (idf over the
  sentences of the whole context, so a word in every sentence counts for little);
- ``bm25``: the sentence's BM25 score for the question, relative to the best sentence;
- ``bigrams``: question bigrams found in the sentence, in order;
- ``window``: how tightly the matched question words sit together in the sentence;
- ``typed``: a span of the asked-for kind (date, number, name) that the question lacks;
- ``typed_near``: such a span close to the question's words;
- ``novel``: how much the sentence says beyond the question (a sentence that only restates
  the question rarely holds its answer);
- ``neighbours``: coverage of the sentences just before and after (the answer is often
  split across two sentences: "This created ..." after the sentence naming what did);
- ``rank`` / ``top_chunk``: the chunk's rank in retrieval;
- ``first``: the sentence opens its chunk;
- ``length``: log of the sentence's word count;
- ``with_previous``: what the previous sentence adds to the coverage; ``anaphor_previous`` /
  ``anaphor_next``: the coverage of the sentence before when this one opens with "He",
  "This", ... (and of the one after when that one does);
- ``soft_coverage`` / ``soft_extra``: coverage when a question word missing from the
  sentence may be matched by a similar word (word vectors, :mod:`workers.text.word_vectors`),
  and the part of it due to such partial matches only;
- ``with_title``: what the chunk's title adds to the coverage (a sentence of the article
  on X rarely names X again).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workers.text.answer_types import candidates
from workers.text.tokenize import content_terms, stem, stems, words
from workers.text.word_vectors import WordVectors

NAMES: tuple[str, ...] = (
    "coverage",
    "bm25",
    "bigrams",
    "window",
    "typed_date",
    "typed_number",
    "typed_proper",
    "typed_near",
    "novel",
    "neighbours",
    "rank",
    "top_chunk",
    "first",
    "length",
    "with_previous",
    "anaphor_previous",
    "anaphor_next",
    "soft_coverage",
    "soft_extra",
    "with_title",
)
SIMILAR = 0.35  # word-vector cosine from which two different words count as a partial match

_ANAPHOR = frozenset(
    "he she it they this these that those his her its their there such both".split()
)


def opens_with_anaphor(text: str) -> bool:
    first = words(text[:40])
    return bool(first) and first[0] in _ANAPHOR


@dataclass(frozen=True)
class Candidate:
    """A sentence of the context: its chunk's rank, its place in the chunk and its stems."""

    chunk_rank: int
    index: int  # position of the sentence in its chunk
    text: str
    stems: list[str]
    title: frozenset[str] = frozenset()  # stems of the chunk's title


def idf_of(pool: Sequence[Candidate]) -> dict[str, float]:
    df: dict[str, int] = {}
    for s in pool:
        for t in set(s.stems):
            df[t] = df.get(t, 0) + 1
    n = len(pool)
    return {t: math.log(1 + n / c) for t, c in df.items()}


def _coverage(q: set[str], terms: set[str], idf: dict[str, float], total: float) -> float:
    return sum(idf.get(t, 1.0) for t in q & terms) / total


def _bm25(q: set[str], pool: Sequence[Candidate], idf: dict[str, float]) -> np.ndarray:
    avg = sum(len(s.stems) for s in pool) / max(len(pool), 1) or 1.0
    out = np.zeros(len(pool))
    for i, s in enumerate(pool):
        tf: dict[str, int] = {}
        for t in s.stems:
            if t in q:
                tf[t] = tf.get(t, 0) + 1
        norm = 1.2 * (0.25 + 0.75 * len(s.stems) / avg)
        out[i] = sum(idf.get(t, 1.0) * f * 2.2 / (f + norm) for t, f in tf.items())
    top = out.max() if len(out) else 0.0
    return out / top if top > 0 else out


def _window(q: set[str], stems_: list[str]) -> float:
    """1 when the matched question words are adjacent, towards 0 as they spread out."""
    positions = [i for i, t in enumerate(stems_) if t in q]
    matched = len({stems_[i] for i in positions})
    if matched < 2:
        return 0.0
    # the smallest span holding every distinct matched term
    best = len(stems_)
    need = matched
    count: dict[str, int] = {}
    have = 0
    left = 0
    for right, pos in enumerate(positions):
        t = stems_[pos]
        count[t] = count.get(t, 0) + 1
        if count[t] == 1:
            have += 1
        while have == need:
            best = min(best, pos - positions[left] + 1)
            lt = stems_[positions[left]]
            count[lt] -= 1
            if count[lt] == 0:
                have -= 1
            left += 1
        del right
    return matched / best


def _typed(kind: str | None, question: str, q: set[str], sentence: str) -> tuple[float, float]:
    """(a span of the asked kind the question lacks, closeness of one to the question words)."""
    if kind is None:
        return 0.0, 0.0
    q_words = set(words(question))
    tokens = sentence.split()
    anchors = [i for i, w in enumerate(tokens) if set(stems(w)) & q]
    found = 0.0
    near = 0.0
    for offset, span in candidates(sentence, kind):
        span_words = set(words(span))
        if not span_words or span_words <= q_words:
            continue
        found = 1.0
        position = len(sentence[:offset].split())
        if anchors:
            distance = min(abs(position - a) for a in anchors)
            near = max(near, 1.0 / (1.0 + distance / 4.0))
    return found, near


def _soft(
    question: str, pool: Sequence[Candidate], idf: dict[str, float], vectors: WordVectors | None
) -> np.ndarray:
    """(soft coverage, its partial-match part) per sentence."""
    q_words = list(dict.fromkeys(content_terms(question)))
    out = np.zeros((len(pool), 2))
    if not q_words:
        return out
    ceiling = max(idf.values(), default=1.0)
    weight = np.array([idf.get(stem(w), ceiling) for w in q_words])
    total = float(weight.sum()) or 1.0
    q_stems = [stem(w) for w in q_words]
    q_vecs = vectors.matrix(q_words) if vectors is not None else None
    for i, s in enumerate(pool):
        have = set(s.stems)
        exact = np.array([t in have for t in q_stems])
        partial = np.zeros(len(q_words))
        if q_vecs is not None:
            s_words = list(dict.fromkeys(content_terms(s.text)))
            if s_words:
                best = (q_vecs @ vectors.matrix(s_words).T).max(axis=1)  # type: ignore[union-attr]
                partial = np.where(exact, 0.0, np.where(best > SIMILAR, best, 0.0))
        out[i, 0] = float((weight * (exact + partial)).sum()) / total
        out[i, 1] = float((weight * partial).sum()) / total
    return out


def sentence_features(
    question: str,
    q_terms: Sequence[str],
    kind: str | None,
    pool: Sequence[Candidate],
    *,
    vectors: WordVectors | None = None,
) -> np.ndarray:
    """A (len(pool), len(NAMES)) matrix of features."""
    q = set(q_terms)
    idf = idf_of(pool)
    total = sum(idf.get(t, 1.0) for t in q) or 1.0
    soft = _soft(question, pool, idf, vectors)
    q_bigrams = set(itertools.pairwise(q_terms))
    cover = np.array([_coverage(q, set(s.stems), idf, total) for s in pool])
    bm25 = _bm25(q, pool, idf)
    rows = np.zeros((len(pool), len(NAMES)))
    for i, s in enumerate(pool):
        terms = set(s.stems)
        bigrams = len(q_bigrams & set(itertools.pairwise(s.stems)))
        typed, near = _typed(kind, question, q, s.text)
        novel = len(terms - q)
        neighbours = [
            cover[j]
            for j in (i - 1, i + 1)
            if 0 <= j < len(pool) and pool[j].chunk_rank == s.chunk_rank
        ]
        prev = i - 1 if i > 0 and pool[i - 1].chunk_rank == s.chunk_rank else None
        nxt = i + 1 if i + 1 < len(pool) and pool[i + 1].chunk_rank == s.chunk_rank else None
        union = cover[i]
        if prev is not None:
            union = _coverage(q, terms | set(pool[prev].stems), idf, total)
        anaphor_prev = cover[prev] if prev is not None and opens_with_anaphor(s.text) else 0.0
        anaphor_next = cover[nxt] if nxt is not None and opens_with_anaphor(pool[nxt].text) else 0.0
        rows[i] = (
            cover[i],
            bm25[i],
            min(bigrams, 3),
            _window(q, s.stems),
            typed * (kind == "date"),
            typed * (kind == "number"),
            typed * (kind == "proper"),
            near,
            math.log1p(novel),
            max(neighbours, default=0.0),
            min(s.chunk_rank, 5),
            float(s.chunk_rank == 0),
            float(s.index == 0),
            math.log1p(len(s.text.split())),
            union - cover[i],
            anaphor_prev,
            anaphor_next,
            soft[i, 0],
            soft[i, 1],
            _coverage(q, terms | s.title, idf, total) - cover[i],
        )
    return rows

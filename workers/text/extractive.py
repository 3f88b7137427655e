"""Extractive answering: the sentence of the context that best answers, and a short span.

Each sentence of the retrieved chunks is scored by a weighted sum of lexical features
(:mod:`workers.text.sentence_features`): idf-weighted and BM25 overlap with the question
(exact stems, and similar words through static word vectors), whether it holds something
of the kind the question asks for (a date for "when", a number for "how many", a name for
"who"/"where") that the question does not already say, what the sentence before adds when
this one goes on from it ("He ...", "This ..."), and the rank of its chunk; optionally the
cosine similarity of question and sentence embeddings for the few best
sentences (``embedder``).

The answer is the best sentence, followed by one more only when the answer stays short:
one nearly as good, else the sentence it refers back to when it opens with "He", "This",
.... ``short_answer`` is the span of the asked-for kind nearest to
the question's words in the best sentence, when there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from schemas import Chunk
from workers.ports import Embedder
from workers.text.answer_types import answer_type, candidates
from workers.text.late_reader import TokenEncoder, maxsim_scores
from workers.text.sections import finding_score, strip_section_label
from workers.text.sentence_features import (
    NAMES,
    Candidate,
    opens_with_anaphor,
    sentence_features,
)
from workers.text.tokenize import sentences, stems, words
from workers.text.word_vectors import WordVectors, packaged_word_vectors


@dataclass(frozen=True)
class Extract:
    answer: str
    short_answer: str | None
    quotes: list[tuple[str, str]] = field(default_factory=list)  # (chunk_id, sentence)
    score: float = 0.0
    answer_type: str | None = None
    # best score - runner-up's: how clearly the answer won (None: only one sentence)
    margin: float | None = None


# Weights of the features (workers/text/sentence_features.NAMES, in order): a listwise
# logistic fit (softmax over a question's sentences, the target being the sentences holding
# a gold answer) on every second SQuAD question of the visible split, confirmed on the
# other half (docs/benchmarks-retrieval.md, "Answer sentence selection, session 2").
WEIGHTS = np.array(
    [
        2.193,  # coverage
        1.835,  # bm25
        0.326,  # bigrams
        0.190,  # window
        2.198,  # typed_date
        1.182,  # typed_number
        0.845,  # typed_proper
        0.210,  # typed_near
        0.068,  # novel
        -0.146,  # neighbours
        -0.547,  # rank
        0.446,  # top_chunk
        0.148,  # first
        0.075,  # length
        2.026,  # with_previous
        0.995,  # anaphor_previous
        0.949,  # anaphor_next
        3.179,  # soft_coverage
        2.879,  # soft_extra
        2.013,  # with_title
    ]
)
assert len(WEIGHTS) == len(NAMES)
# With an embedder, the EMBEDDED best sentences are re-scored with the cosine of question and
# "title: sentence" embeddings (weight fitted on the same half, confirmed on the other).
EMBEDDED = 5
EMBEDDING_WEIGHT = 5.0
COMPANION_MARGIN = 0.7  # a second sentence within this score of the best one may follow
# A second reading (``reread``) re-scores the REREAD best sentences with this weight x their
# late-interaction score (workers/text/late_reader.py). Chosen on the even SQuAD questions
# among 5 weights, confirmed on the odd ones (docs/benchmarks-loop.md, "Session 7").
REREAD = 5
REREAD_WEIGHT = 40.0


def extract_answer(
    query: str,
    chunks: Sequence[Chunk],
    *,
    max_sentences: int = 2,
    embedder: Embedder | None = None,
    max_words: int = 40,
    word_vectors: WordVectors | Literal["packaged"] | None = "packaged",
    reread: bool = False,
    skip: Callable[[str], bool] | None = None,
    findings: float = 0.0,
    no_restating: bool = False,
) -> Extract:
    """Pick the best-supported sentence(s), with their chunk ids, and a short answer.

    ``word_vectors`` lets a question word be matched by a similar word of a sentence
    ("packaged": the MiniLM package's, when installed; None: exact stems only).
    ``reread`` adds the slower late-interaction reading of the best few sentences, when
    the embedder gives token states (:mod:`workers.text.late_reader`).
    ``skip`` names sentences never to answer with (the guardrails' injection check): they
    stay in their chunk as the context of their neighbours, but are never chosen.
    ``findings`` weighs :func:`prefer_findings`: a sentence stating a result or conclusion
    gains that much, one stating only an aim or background loses it (0: not at all, for a
    question asking for a fact). ``no_restating``: a sentence that says nothing the
    question does not ("No job loops forever." for "How does ... make sure no job loops
    forever?") is never the answer while another sentence shares a word with the question.
    Quotes leave out a structured abstract's section label ("RESULTS", "OBJECTIVE" ...).
    """
    q_terms = stems(query)
    q = set(q_terms)
    if not q or not chunks:
        return Extract(answer="", short_answer=None)
    pool = [
        Candidate(rank, index, sent, stems(sent), frozenset(stems(chunk.title)))
        for rank, chunk in enumerate(chunks)
        for index, sent in enumerate(sentences(chunk.text))
    ]
    if not pool:
        return Extract(answer="", short_answer=None)
    allowed = np.array([skip is None or not skip(s.text) for s in pool])
    if no_restating:
        informative = np.array([not restates(q, s.stems) and bool(q & set(s.stems)) for s in pool])
        if (allowed & informative).any():
            allowed &= np.array([not restates(q, s.stems) for s in pool])
    if not allowed.any():
        return Extract(answer="", short_answer=None)
    chunk_ids = [chunks[s.chunk_rank].chunk_id for s in pool]
    vectors = packaged_word_vectors() if word_vectors == "packaged" else word_vectors
    kind = answer_type(query)
    features = sentence_features(query, q_terms, kind, pool, vectors=vectors)
    scores = features @ WEIGHTS
    if findings:
        scores += findings * np.array([finding_score(s.text) for s in pool])
    scores[~allowed] = -np.inf  # below everything, and never re-scored (see `_best`)
    if embedder is not None:
        # only the few best so far: a sentence embedding costs milliseconds each
        top = _best(scores, allowed)[:EMBEDDED]
        titles = [chunks[pool[i].chunk_rank].title for i in top]
        vecs = embedder.embed(
            [
                query,
                *(
                    f"{t}: {pool[i].text}" if t else pool[i].text
                    for t, i in zip(titles, top, strict=True)
                ),
            ]
        )
        scores[top] += EMBEDDING_WEIGHT * (vecs[1:] @ vecs[0])
        rest = np.ones(len(pool), dtype=bool)
        rest[top] = False
        scores[rest] -= EMBEDDING_WEIGHT  # below every re-scored sentence
    shares = np.array([len(q & set(s.stems)) for s in pool])
    scores[shares == 0] -= 100.0  # a sentence sharing no word with the question is a last resort
    if reread and isinstance(embedder, TokenEncoder):
        top = _best(scores, allowed)[:REREAD]
        late = maxsim_scores(
            embedder, query, chunks, [(pool[i].chunk_rank, pool[i].text) for i in top]
        )
        scores[top] += REREAD_WEIGHT * late
        rest = np.ones(len(pool), dtype=bool)
        rest[top] = False
        scores[rest] -= REREAD_WEIGHT  # below every re-read sentence
    order = _best(scores, allowed)
    best = order[0]
    if shares[best] == 0 and embedder is None:
        return Extract(answer="", short_answer=None)
    chosen = [best]
    for i in _companions(pool, scores, best, order, max_sentences, allowed):
        total_words = sum(len(pool[j].text.split()) for j in chosen) + len(pool[i].text.split())
        if total_words <= max_words:
            chosen.append(i)
    quoted = [strip_section_label(pool[i].text) for i in chosen]
    return Extract(
        answer=" ".join(quoted),
        short_answer=_short_answer(query, kind, pool[best].text),
        quotes=[(chunk_ids[i], text) for i, text in zip(chosen, quoted, strict=True)],
        score=float(scores[best]),
        answer_type=kind,
        margin=float(scores[best] - scores[order[1]]) if len(order) > 1 else None,
    )


def restates(q: set[str], sentence_stems: Sequence[str]) -> bool:
    """Whether a sentence says nothing the question does not (no content word of its own):
    "No job loops forever." for "How does ... make sure no job loops forever?"."""
    return not set(sentence_stems) - q


def _best(scores: np.ndarray, allowed: np.ndarray) -> list[int]:
    """The allowed sentences, best first (stable: ties keep the context's order)."""
    return [int(i) for i in np.argsort(-scores, kind="stable") if allowed[i]]


def _companions(
    pool: Sequence[Candidate],
    scores: np.ndarray,
    best: int,
    order: list[int],
    max_sentences: int,
    allowed: np.ndarray,
) -> list[int]:
    """Sentences that may follow the best one: those nearly as good, then the one it refers
    back to ("He ...", "This ...") when it opens with such a word."""
    out = [i for i in order[1:max_sentences] if scores[best] - scores[i] <= COMPANION_MARGIN]
    previous = best - 1
    if (
        previous >= 0
        and previous not in out
        and allowed[previous]
        and pool[previous].chunk_rank == pool[best].chunk_rank
        and opens_with_anaphor(pool[best].text)
    ):
        out.append(previous)
    return out[: max_sentences - 1]


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

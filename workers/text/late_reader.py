"""A second, slower reading of a close call: question and sentence matched token by token.

The extractor's first reading scores sentences by lexical features and one sentence
embedding each. This one runs the encoder over each candidate's whole chunk (title, then
text) and over the question, and scores a sentence by late interaction ("MaxSim"): every
question token takes its best cosine among the sentence's tokens, read in the context of
their chunk, and the sentence's score is the mean. Paraphrases the stems miss ("founded" /
"established") and words whose meaning the context settles count here. It costs one
encoder run per chunk, so the pipeline spends it only when the evaluator finds the first
answer a close call (docs/benchmarks-loop.md, "Session 7"). Pure given the embedder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from schemas import Chunk


@runtime_checkable
class TokenEncoder(Protocol):
    """An embedder that also gives each token's final state (see ``OnnxEmbedder``)."""

    def token_states(self, texts: Sequence[str], *, max_tokens: int = 512) -> list[_States]: ...


class _States(Protocol):
    vectors: npt.NDArray[np.float32]
    offsets: list[tuple[int, int]]


def chunk_text(chunk: Chunk) -> tuple[str, int]:
    """What the reader encodes for a chunk, and where its text starts in it."""
    if chunk.title:
        return f"{chunk.title}\n{chunk.text}", len(chunk.title) + 1
    return chunk.text, 0


def maxsim_scores(
    encoder: TokenEncoder,
    query: str,
    chunks: Sequence[Chunk],
    candidates: Sequence[tuple[int, str]],
) -> npt.NDArray[np.float32]:
    """The late-interaction score of each candidate ``(chunk index, sentence text)``:
    the mean over the question's tokens of their best cosine with the sentence's tokens
    (0.0 for a sentence the encoder did not reach, past 512 tokens of its chunk)."""
    ranks = sorted({rank for rank, _ in candidates})
    texts = [chunk_text(chunks[r]) for r in ranks]
    question, *encoded = encoder.token_states([query, *(t for t, _ in texts)])
    by_rank = {
        r: (states, text, start)
        for r, states, (text, start) in zip(ranks, encoded, texts, strict=True)
    }
    scores = np.zeros(len(candidates), dtype=np.float32)
    for j, (rank, sentence) in enumerate(candidates):
        states, text, start = by_rank[rank]
        begin = text.find(sentence, start)
        if begin < 0 or len(question.offsets) == 0:
            continue
        end = begin + len(sentence)
        inside = [i for i, (a, b) in enumerate(states.offsets) if a >= begin and b <= end]
        if inside:
            similarity = question.vectors @ states.vectors[inside].T
            scores[j] = float(similarity.max(axis=1).mean())
    return scores

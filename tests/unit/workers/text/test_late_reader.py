"""The second reading of a close call: late interaction between question and sentence tokens."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from schemas import Chunk, GenerationTask
from workers.providers.offline import OfflineProvider, confidence
from workers.text.extractive import extract_answer
from workers.text.late_reader import maxsim_scores


@dataclass(frozen=True)
class States:
    vectors: npt.NDArray[np.float32]
    offsets: list[tuple[int, int]]


class WordEncoder:
    """Each word its own direction, whatever its context ("length" shares "long"'s: a
    paraphrase the stems miss); reaches ``reach`` characters of a text (as the real encoder
    stops at 512 tokens)."""

    name = "words"
    dim = 64
    ALIASES = {"length": "long"}

    def __init__(self, reach: int = 10_000) -> None:
        self.reach = reach
        self.calls: list[str] = []
        self._index: dict[str, int] = {}

    def _vec(self, word: str) -> npt.NDArray[np.float32]:
        word = self.ALIASES.get(word, word)
        v = np.zeros(self.dim, dtype=np.float32)
        v[self._index.setdefault(word, len(self._index))] = 1.0
        return v

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.ones((len(texts), self.dim), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def token_states(self, texts: Sequence[str], *, max_tokens: int = 512) -> list[States]:
        self.calls.extend(texts)
        out = []
        for text in texts:
            found = [m for m in re.finditer(r"\w+", text) if m.end() <= self.reach]
            vectors = np.array([self._vec(m.group().lower()) for m in found], dtype=np.float32)
            out.append(
                States(vectors.reshape(len(found), self.dim), [(m.start(), m.end()) for m in found])
            )
        return out


NILE = Chunk(
    chunk_id="nile#0",
    doc_id="nile",
    title="Nile",
    text="Its basin covers eleven countries. The river is 6,650 km long.",
)


def test_maxsim_scores_each_sentence_by_its_own_tokens_after_the_title() -> None:
    encoder = WordEncoder()
    first, second = "Its basin covers eleven countries.", "The river is 6,650 km long."
    scores = maxsim_scores(
        encoder, "How long is the Nile river?", [NILE], [(0, first), (0, second)]
    )
    # 6 question tokens: the second sentence holds long, is, the and river; the first none
    # ("nile" is only in the title, which no sentence owns)
    assert scores[1] == np.float32(4 / 6) and scores[0] == 0.0
    assert encoder.calls == ["How long is the Nile river?", "Nile\n" + NILE.text]  # once a chunk


def test_a_sentence_past_the_encoders_reach_scores_zero() -> None:
    encoder = WordEncoder(reach=len("Nile\nIts basin covers eleven countries."))
    scores = maxsim_scores(
        encoder,
        "Is the river basin long?",
        [NILE],
        [(0, "Its basin covers eleven countries."), (0, "The river is 6,650 km long.")],
    )
    assert scores[1] == 0.0 and scores[0] > 0.0


def test_reread_lets_the_late_reading_overturn_a_close_call() -> None:
    chunk = Chunk(
        chunk_id="n#0",
        doc_id="n",
        title="",
        text="The Nile river basin covers eleven countries. The Nile is 6,650 km long.",
    )
    query = "What is the length of the Nile river?"
    first = extract_answer(query, [chunk], embedder=None, word_vectors=None, max_sentences=1)
    plain = extract_answer(
        query, [chunk], embedder=WordEncoder(), word_vectors=None, max_sentences=1
    )
    again = extract_answer(
        query, [chunk], embedder=WordEncoder(), word_vectors=None, max_sentences=1, reread=True
    )
    # by stems the basin sentence wins (nile, river); token by token the length one does
    # (the, the, is, nile, length~long: 5 of 8 question tokens against 4)
    assert first.answer == plain.answer == "The Nile river basin covers eleven countries."
    assert again.answer == "The Nile is 6,650 km long."
    assert first.margin is not None and first.margin > 0


def test_generation_reports_its_confidence_and_reads_again_when_asked() -> None:
    encoder = WordEncoder()
    provider = OfflineProvider(embedder=lambda: encoder)
    task = GenerationTask(
        job_id="j",
        step_id="j/1/generation/0",
        tenant="t",
        query="How long is the Nile river?",
        context=[NILE],
    )
    r = provider.generate(task)
    assert r.confidence is not None and 0.0 <= r.confidence < 1.0 and not encoder.calls
    provider.generate(task.model_copy(update={"reread": True}))
    assert encoder.calls  # the late reading ran


def test_confidence_of_a_margin() -> None:
    assert (confidence(None), confidence(0.0), confidence(1.0), confidence(2.0)) == (
        1.0,
        0.0,
        0.5,
        0.6667,
    )
    assert confidence(-0.5) == 0.0

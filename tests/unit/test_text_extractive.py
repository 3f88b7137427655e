"""Extractive answers: the best-supported sentence first, short, cited; short spans by type."""

from __future__ import annotations

from schemas import Chunk
from workers.embeddings import HashingEmbedder
from workers.text.answer_types import answer_type, candidates
from workers.text.extractive import extract_answer

OIL = Chunk(
    chunk_id="oil#0", doc_id="oil", title="1973 oil crisis",
    text=("The embargo caused an oil crisis with many effects. The 1973 oil crisis began in "
          "October 1973 when OAPEC proclaimed an oil embargo. Prices rose to nearly $12."),
)
OTHER = Chunk(chunk_id="x#0", doc_id="x", title="Cats", text="Cats purr. Cats sleep a lot.")


def test_best_supported_sentence_comes_first_with_its_citation() -> None:
    ex = extract_answer("When did the 1973 oil crisis begin?", [OTHER, OIL])
    assert ex.answer.startswith("The 1973 oil crisis began in October 1973")
    assert ex.quotes[0] == ("oil#0", ex.answer.split(" The embargo")[0].split(" Prices")[0])


def test_short_answer_of_the_asked_kind() -> None:
    ex = extract_answer("When did the 1973 oil crisis begin?", [OIL])
    assert ex.answer_type == "date"
    assert ex.short_answer == "October 1973"
    price = extract_answer("How much did prices rise to?", [OIL])
    assert price.short_answer is not None and "12" in price.short_answer


def test_answers_stay_short() -> None:
    long = Chunk(chunk_id="l#0", doc_id="l",
                 text=" ".join(f"Oil sentence number {i} about the crisis." for i in range(30)))
    ex = extract_answer("oil crisis", [long])
    assert len(ex.answer.split()) <= 40


def test_no_overlap_means_no_answer() -> None:
    assert extract_answer("quantum chromodynamics", [OTHER]).answer == ""
    assert extract_answer("anything", []).answer == ""
    assert extract_answer("the of", [OIL]).answer == ""


def test_an_embedder_may_rerank_sentences() -> None:
    ex = extract_answer("When did the 1973 oil crisis begin?", [OIL], embedder=HashingEmbedder())
    assert "October 1973" in ex.answer.split(". ")[0]


def test_answer_types_and_candidates() -> None:
    assert answer_type("How many people live there?") == "number"
    assert answer_type("Who wrote Hamlet?") == "proper"
    assert answer_type("Why is the sky blue?") is None
    assert [c for _, c in candidates("It was 1999 and then 2001.", "date")] == ["1999", "2001"]

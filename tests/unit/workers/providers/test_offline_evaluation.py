"""The offline evaluator: what it can check, and when it asks for a revision."""

from __future__ import annotations

import pytest

from schemas import Chunk, Citation, EvaluationTask
from workers.providers.offline import OfflineProvider
from workers.text.answer_types import is_question

MYELIN = Chunk(
    chunk_id="m#0",
    doc_id="m",
    title="Remyelination",
    text=(
        "Oligodendrocyte precursors restore myelin sheaths after injury. "
        "Sheath thickness recovers within weeks in young animals."
    ),
)


def verdict(
    query: str,
    answer: str,
    *,
    kind: str = "question",
    cited: bool = True,
    confidence: float | None = None,
    iteration: int = 1,
    last: bool = False,
    provider: OfflineProvider | None = None,
) -> tuple[str, str]:
    task = EvaluationTask(
        job_id="j",
        step_id=f"j/{iteration}/evaluation/0",
        tenant="t",
        query=query,
        answer=answer,
        context=[MYELIN],
        kind=kind,  # type: ignore[arg-type]
        citations=[Citation(chunk_id="m#0", doc_id="m", quote=answer)] if cited else [],
        confidence=confidence,
        iteration=iteration,
        is_last_iteration=last,
    )
    r = (provider or OfflineProvider()).evaluate(task)
    return r.verdict, r.feedback


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("Who restores myelin sheaths?", True),
        ("In what year did the sheaths recover", True),
        ("Name the cells that restore myelin", True),
        ("Trotsky thought what was needed?.", True),
        ("Aged mice remyelinate as fast as young mice.", False),
        ("Sheaths recover when precursors are transplanted.", False),  # "when" inside a claim
    ],
)
def test_is_question_tells_questions_from_claims(text: str, asks: bool) -> None:
    assert is_question(text) is asks


ANSWER = "Sheath thickness recovers within weeks in young animals."


def test_a_claim_is_not_revised_for_missing_its_words() -> None:
    # Few of the claim's words are in the cited, faithful answer: for a claim that checks
    # nothing (the answer is evidence about it), so the evaluator accepts.
    claim = "Aged mice show impaired remyelination compared with juvenile mice."
    assert verdict(claim, ANSWER)[0] == "accept"


def test_a_question_is_still_revised_when_the_answer_misses_its_words() -> None:
    question = "Do aged mice show impaired remyelination compared with juvenile mice?"
    result, feedback = verdict(question, ANSWER)
    assert result == "revise" and "not covered" in feedback


def test_a_claim_whose_answer_cites_nothing_is_revised() -> None:
    claim = "Aged mice show impaired remyelination compared with juvenile mice."
    result, feedback = verdict(claim, ANSWER, cited=False)
    assert result == "revise" and "cites nothing" in feedback


QUESTION = "How fast does sheath thickness recover in young animals?"
FAR_QUESTION = "Do aged mice show impaired remyelination compared with juvenile mice?"


def test_a_close_call_is_read_again_once_and_only_while_the_loop_can() -> None:
    result, feedback = verdict(QUESTION, ANSWER, confidence=0.4)
    assert result == "reread" and "close call (confidence 0.40)" in feedback
    assert verdict(QUESTION, ANSWER, confidence=0.7)[0] == "accept"
    assert verdict(QUESTION, ANSWER, confidence=0.4, iteration=2)[0] == "accept"
    assert verdict(QUESTION, ANSWER, confidence=0.4, last=True)[0] == "accept"
    # the generator's confidence replaces word overlap for a question, not the citations
    assert verdict(FAR_QUESTION, ANSWER, confidence=0.9)[0] == "accept"
    assert verdict(FAR_QUESTION, ANSWER, confidence=0.9, cited=False)[0] == "revise"
    # a claim, or a generator that does not say, is judged as before
    assert verdict("Sheaths recover in weeks.", ANSWER, confidence=0.1)[0] == "accept"
    assert verdict(FAR_QUESTION, ANSWER)[0] == "revise"


def test_evaluation_v1_ignores_the_confidence() -> None:
    v1 = OfflineProvider(versions={"evaluation": 1})
    assert verdict(QUESTION, ANSWER, confidence=0.1, provider=v1)[0] == "accept"
    assert verdict(FAR_QUESTION, ANSWER, confidence=0.9, provider=v1)[0] == "revise"

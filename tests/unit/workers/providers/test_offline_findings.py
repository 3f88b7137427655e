"""Offline answers state findings, not aims or the question back (issue 22): generation v3
prefers a finding for a claim or a why/how question, quotes leave section labels out, and
evaluation v4 sends back an answer that only restates the question or states an aim."""

from __future__ import annotations

import json
from pathlib import Path

from schemas import Chunk, Citation, EvaluationTask, GenerationTask
from workers.providers.offline import NOT_A_FINDING, OfflineProvider

ROOT = Path(__file__).resolve().parents[4]

ABSTRACT = Chunk(
    chunk_id="a#0",
    doc_id="a",
    title="Aspirin and stroke in older adults",
    text=(
        "OBJECTIVE To investigate whether daily aspirin lowers the risk of stroke in older "
        "adults. METHODS We followed 2,000 adults aged over 70 for five years. "
        "RESULTS Daily aspirin lowered the risk of ischaemic stroke by 20% (p < 0.01). "
        "CONCLUSIONS Aspirin lowers the risk of stroke in older adults."
    ),
)
CLAIM = "Daily aspirin lowers the risk of stroke in older adults."


def generate(query: str, chunks: list[Chunk], versions: dict[str, int] | None = None) -> str:
    task = GenerationTask(
        job_id="j", step_id="j/1/generation/0", tenant="t", query=query, context=chunks
    )
    return OfflineProvider(versions=versions).generate(task).answer


def evaluate(
    query: str, answer: str, chunk: Chunk, *, last: bool = False
) -> tuple[str, str, float]:
    task = EvaluationTask(
        job_id="j",
        step_id="j/1/evaluation/0",
        tenant="t",
        query=query,
        answer=answer,
        context=[chunk],
        citations=[Citation(chunk_id=chunk.chunk_id, doc_id=chunk.doc_id, quote=answer)],
        is_last_iteration=last,
    )
    r = OfflineProvider().evaluate(task)
    return r.verdict, r.feedback, r.scores["faithfulness"]


def test_a_claim_is_answered_by_a_finding_without_its_section_label() -> None:
    before = generate(CLAIM, [ABSTRACT], {"generation": 1})
    assert before.startswith("To investigate")  # today's generator quoted the aim
    after = generate(CLAIM, [ABSTRACT])
    assert after.startswith(("Daily aspirin lowered", "Aspirin lowers")), after
    assert "OBJECTIVE" not in after and "RESULTS" not in after and "CONCLUSIONS" not in after


def test_the_demo_question_is_not_answered_with_itself() -> None:
    row = next(
        json.loads(line)
        for line in (ROOT / "ragrelay/sample/corpus.jsonl").read_text().splitlines()
        if '"budgets"' in line
    )
    chunk = Chunk(chunk_id="budgets#0", doc_id="budgets", title=row["title"], text=row["text"])
    question = "How does ragrelay make sure no job loops forever?"
    assert generate(question, [chunk], {"generation": 1}).startswith("No job loops forever")
    answer = generate(question, [chunk])
    assert not answer.startswith("No job loops forever"), answer
    verdict, feedback, _ = evaluate(question, "No job loops forever.", chunk)
    assert verdict == "revise" and NOT_A_FINDING in feedback and "restates" in feedback


def test_an_aim_is_sent_back_but_accepted_when_nothing_is_left() -> None:
    aim = "To investigate whether daily aspirin lowers the risk of stroke in older adults."
    verdict, feedback, _ = evaluate(CLAIM, aim, ABSTRACT)
    assert verdict == "revise" and "aim" in feedback
    assert evaluate(CLAIM, aim, ABSTRACT, last=True)[0] == "accept"
    finding = "Aspirin lowers the risk of stroke in older adults."
    assert evaluate(CLAIM, finding, ABSTRACT)[0] == "accept"


def test_a_fact_question_is_not_judged_for_findings() -> None:
    # "How many" asks for a number: the sentence holding it is the answer, finding or not
    answer = generate("How many adults were followed?", [ABSTRACT])
    assert "2,000" in answer

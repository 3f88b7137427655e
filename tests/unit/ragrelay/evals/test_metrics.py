"""Ranking and SQuAD metrics against hand-computed values."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ragrelay.evals.metrics import (
    answer_hit,
    collapse_to_documents,
    exact_match,
    ndcg_at_k,
    normalize_answer,
    recall_at_k,
    token_f1,
)
from ragrelay.evals.qa import ranked_documents
from ragrelay.evals.retrieval import read_qrels, read_queries
from schemas import JobResult, TraceEvent


def test_perfect_ranking_has_ndcg_one() -> None:
    assert ndcg_at_k(["a", "b"], {"a": 1, "b": 1}) == pytest.approx(1.0)


def test_ndcg_uses_linear_gains_and_log2_discount() -> None:
    # relevant doc at rank 2 only: (1/log2(3)) / (1/log2(2))
    assert ndcg_at_k(["x", "a"], {"a": 1}) == pytest.approx(1 / math.log2(3))
    # graded: rel 2 at rank 2, rel 1 at rank 1; ideal puts 2 first
    got = ndcg_at_k(["b", "a"], {"a": 2, "b": 1})
    assert got == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_ndcg_cuts_at_k_and_ignores_unjudged() -> None:
    assert ndcg_at_k(["x"] * 10 + ["a"], {"a": 1}, k=10) == 0.0
    assert ndcg_at_k([], {"a": 1}) == 0.0
    assert ndcg_at_k(["a"], {}) == 0.0


def test_recall_counts_relevant_in_top_k() -> None:
    assert recall_at_k(["a", "x", "b"], {"a": 1, "b": 1, "c": 1}, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(["a"], {"a": 0}) == 0.0


def test_chunks_collapse_to_their_document_first_place() -> None:
    assert collapse_to_documents(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]


def test_squad_normalisation_drops_case_punctuation_articles() -> None:
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert exact_match("the Denver Broncos", ["Denver Broncos"])


def test_answer_hit_matches_on_word_boundaries() -> None:
    assert answer_hit("It began in October 1973, says the record.", ["October 1973"])
    assert not answer_hit("In 19735 things happened.", ["1973"])
    assert not answer_hit("", ["x"])


def test_token_f1_takes_best_gold() -> None:
    assert token_f1("Denver Broncos", ["Broncos", "Denver Broncos"]) == pytest.approx(1.0)
    assert token_f1("the Denver team", ["Denver Broncos"]) == pytest.approx(0.5)
    assert token_f1("nothing", ["Broncos"]) == 0.0


def test_qrels_and_queries_readers(tmp_path: Path) -> None:
    qrels = tmp_path / "q.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n2\td3\t1\n")
    assert read_qrels(qrels) == {"1": {"d1": 1, "d2": 2}, "2": {"d3": 1}}
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"_id": "1", "text": "a claim"}\n\n{"_id": 2, "text": "b"}\n')
    assert read_queries(queries) == {"1": "a claim", "2": "b"}


def _looped_result(final_answer: str) -> JobResult:
    """Two iterations, each with its own generation and fused retrieval."""
    trace = []
    for iteration, (answer, docs) in enumerate(
        [("first answer", ["d1", "d2"]), ("second answer", ["d3", "d4"])], start=1
    ):
        trace.append(
            TraceEvent(
                job_id="j",
                type="retrieval.fused",
                at=float(iteration),
                stage="retrieval",
                iteration=iteration,
                detail={"doc_ids": docs},
            )
        )
        trace.append(
            TraceEvent(
                job_id="j",
                type="step.completed",
                at=float(iteration),
                stage="generation",
                iteration=iteration,
                detail={"result": {"answer": answer}},
            )
        )
    return JobResult(
        job_id="j",
        tenant="t",
        status="budget_exhausted",
        answer=final_answer,
        iterations=2,
        stop_reason="max_iterations",
        trace=trace,
    )


def test_qa_scores_the_retrieval_of_the_iteration_that_wrote_the_answer() -> None:
    # the best-judged answer came from iteration 1: its evidence is what gets scored
    assert ranked_documents(_looped_result("first answer")) == ["d1", "d2"]
    assert ranked_documents(_looped_result("second answer")) == ["d3", "d4"]
    # an answer no generation wrote (e.g. "no relevant documents"): the last retrieval
    assert ranked_documents(_looped_result("nothing")) == ["d3", "d4"]

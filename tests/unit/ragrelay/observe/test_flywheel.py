"""Feedback records become eval cases in the SQuAD questions format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bus.errors import UsageError
from ragrelay.feedback import FeedbackRecord
from ragrelay.observe.flywheel import export_cases, parse_since, to_case

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC).timestamp()


def rec(
    fid: str,
    *,
    at: float,
    rating: int,
    job: str = "j1",
    query: str | None = "Who?",
    corrected: str | None = None,
    answer: str | None = "Bob",
) -> FeedbackRecord:
    return FeedbackRecord(
        feedback_id=fid,
        job_id=job,
        tenant="acme",
        at=at,
        rating=rating,
        corrected_answer=corrected,
        query=query,
        answer=answer,
        status="succeeded",
        cited_doc_ids=["d1"],
    )


def test_since_accepts_dates_datetimes_and_ages() -> None:
    assert parse_since("2026-11-28", now=NOW) == NOW - 12 * 3600
    assert parse_since("2026-11-28T12:00:00Z", now=NOW) == NOW
    assert parse_since("2026-11-28T13:00:00+01:00", now=NOW) == NOW
    assert parse_since("24h", now=NOW) == NOW - 86_400
    assert parse_since("7d", now=NOW) == NOW - 7 * 86_400
    with pytest.raises(UsageError, match="--since"):
        parse_since("last tuesday", now=NOW)


def test_corrected_answer_is_the_reference() -> None:
    case = to_case(rec("f1", at=NOW, rating=2, corrected="Alice"))
    assert case["_id"] == "feedback-f1"
    assert case["question"] == "Who?"
    assert case["answers"] == ["Alice"]
    assert case["reference_kind"] == "corrected"
    assert (case["job_id"], case["tenant"], case["rating"]) == ("j1", "acme", 2)
    assert case["job_answer"] == "Bob" and "rejected_answers" not in case


def test_a_well_rated_answer_is_confirmed_and_a_bad_one_is_rejected() -> None:
    assert to_case(rec("f1", at=NOW, rating=5))["answers"] == ["Bob"]
    bad = to_case(rec("f2", at=NOW, rating=1))
    assert bad["answers"] == [] and bad["rejected_answers"] == ["Bob"]


def test_export_filters_by_date_keeps_the_last_word_per_job_and_skips_no_query() -> None:
    records = [
        rec("old", at=NOW - 10 * 86_400, rating=5, job="j0"),
        rec("a", at=NOW - 3600, rating=5, job="j1"),
        rec("b", at=NOW - 60, rating=2, job="j1", corrected="Carol"),  # replaces "a"
        rec("c", at=NOW - 30, rating=1, job="j2"),  # no reference
        rec("d", at=NOW - 20, rating=5, job="j3", query=None),
    ]
    skipped: list[str] = []
    cases = list(export_cases(records, since=NOW - 86_400, skipped=skipped))
    assert [(c["_id"], c["answers"]) for c in cases] == [("feedback-b", ["Carol"])]
    assert skipped == ["d"]
    everything = list(export_cases(records, include_unreferenced=True))
    assert [c["_id"] for c in everything] == ["feedback-old", "feedback-b", "feedback-c"]

"""Replay: the request recovered from a trace, and the diff of two outcomes."""

from __future__ import annotations

import pytest

from bus.errors import UsageError
from orchestrator.observe.replay import diff_results, recover_request, render_diff
from orchestrator.state import JobState
from schemas import Citation, JobRequest, JobResult, TraceEvent, Usage


def submitted(**detail: object) -> TraceEvent:
    return TraceEvent(job_id="j", type="job.submitted", at=1.0, outcome="accepted",
                      detail={"tenant": "acme", "kind": "question",
                              "budget": {"max_iterations": 2}, **detail})


def test_request_comes_from_the_submitted_event() -> None:
    req = recover_request("j", [submitted(query="Who?", user_id="u1")])
    assert (req.query, req.tenant, req.user_id, req.budget.max_iterations) == (
        "Who?", "acme", "u1", 2)
    assert req.idempotency_key is None


def test_live_state_wins_and_query_can_be_overridden() -> None:
    state = JobState(job_id="j", created_at=0, deadline_at=9,
                     request=JobRequest(query="From state", tenant="t2", idempotency_key="k"))
    req = recover_request("j", [submitted()], state)
    assert (req.query, req.tenant, req.idempotency_key) == ("From state", "t2", None)
    assert recover_request("j", [submitted()], query="Given").query == "Given"


def test_a_trace_without_query_or_without_submission_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="--query"):
        recover_request("j", [submitted()])
    with pytest.raises(UsageError, match="no trace"):
        recover_request("j", [])


def result(answer: str, cites: list[str], scores: dict[str, float], **kw: object) -> JobResult:
    return JobResult(job_id=str(kw.pop("job_id", "a")), tenant="t", status="succeeded",
                     stop_reason=str(kw.pop("stop_reason", "accepted")), answer=answer,
                     citations=[Citation(chunk_id=c, doc_id=c.split("#")[0]) for c in cites],
                     scores=scores, usage=Usage(), **kw)


def test_identical_outcomes_are_the_same() -> None:
    a = result("x", ["d#0"], {"f": 1.0})
    d = diff_results(a, a.model_copy(update={"job_id": "b"}))
    assert d.same and "same outcome" in render_diff(d)


def test_changes_in_answer_citations_scores_and_stop_reason_are_reported() -> None:
    before = result("Paris.\nCapital.", ["d#0", "d#1"], {"f": 0.5, "r": 0.4})
    pv = TraceEvent(job_id="b", type="step.completed", at=1.0, stage="generation",
                    detail={"prompt_version": "generation@v2:abc"})
    after = result("Paris.\nCity.", ["d#1", "e#0"], {"f": 0.75}, job_id="b",
                   stop_reason="max_iterations", iterations=3, trace=[pv])
    d = diff_results(before, after)
    assert not d.same
    assert d.fields["stop_reason"] == ("accepted", "max_iterations")
    assert d.fields["iterations"] == (0, 3)
    assert d.fields["prompt_versions"] == ({}, {"generation": "generation@v2:abc"})
    assert d.citations_added == ["e#0"] and d.citations_removed == ["d#0"]
    assert d.scores == {"f": (0.5, 0.75), "r": (0.4, None)}
    text = render_diff(d)
    assert "-Capital." in text and "+City." in text and "f: 0.500 -> 0.750 (+0.250)" in text
    assert d.to_dict()["changed"]["stop_reason"] == {"before": "accepted",
                                                     "after": "max_iterations"}

"""Replay: the request recovered from a trace, and the diff of two outcomes."""

from __future__ import annotations

import pytest

from bus.errors import UsageError
from orchestrator.state import JobState
from ragrelay.observe.replay import diff_results, recover_request, render_diff
from schemas import Citation, JobRequest, JobResult, TraceEvent, Usage


def submitted(**detail: object) -> TraceEvent:
    return TraceEvent(
        job_id="j",
        type="job.submitted",
        at=1.0,
        outcome="accepted",
        detail={"tenant": "acme", "kind": "question", "budget": {"max_iterations": 2}, **detail},
    )


def test_request_comes_from_the_submitted_event() -> None:
    req = recover_request("j", [submitted(query="Who?", user_id="u1")])
    assert (req.query, req.tenant, req.user_id, req.budget.max_iterations) == (
        "Who?",
        "acme",
        "u1",
        2,
    )
    assert req.idempotency_key is None


def test_live_state_wins_and_query_can_be_overridden() -> None:
    state = JobState(
        job_id="j",
        created_at=0,
        deadline_at=9,
        request=JobRequest(query="From state", tenant="t2", idempotency_key="k"),
    )
    req = recover_request("j", [submitted()], state)
    assert (req.query, req.tenant, req.idempotency_key) == ("From state", "t2", None)
    assert recover_request("j", [submitted()], query="Given").query == "Given"


def test_a_trace_without_query_or_without_submission_is_a_clear_error() -> None:
    with pytest.raises(UsageError, match="--query"):
        recover_request("j", [submitted()])
    with pytest.raises(UsageError, match="no trace"):
        recover_request("j", [])


def result(answer: str, cites: list[str], scores: dict[str, float], **kw: object) -> JobResult:
    return JobResult(
        job_id=str(kw.pop("job_id", "a")),
        tenant="t",
        status="succeeded",
        stop_reason=str(kw.pop("stop_reason", "accepted")),
        answer=answer,
        citations=[Citation(chunk_id=c, doc_id=c.split("#")[0]) for c in cites],
        scores=scores,
        usage=Usage(),
        **kw,
    )


def test_identical_outcomes_are_the_same() -> None:
    a = result("x", ["d#0"], {"f": 1.0})
    d = diff_results(a, a.model_copy(update={"job_id": "b"}))
    assert d.same and "same outcome" in render_diff(d)


def test_changes_in_answer_citations_scores_and_stop_reason_are_reported() -> None:
    before = result("Paris.\nCapital.", ["d#0", "d#1"], {"f": 0.5, "r": 0.4})
    pv = TraceEvent(
        job_id="b",
        type="step.completed",
        at=1.0,
        stage="generation",
        detail={"prompt_version": "generation@v2:abc"},
    )
    after = result(
        "Paris.\nCity.",
        ["d#1", "e#0"],
        {"f": 0.75},
        job_id="b",
        stop_reason="max_iterations",
        iterations=3,
        trace=[pv],
    )
    d = diff_results(before, after)
    assert not d.same
    assert d.fields["stop_reason"] == ("accepted", "max_iterations")
    assert d.fields["iterations"] == (0, 3)
    assert d.fields["prompt_versions"] == ({}, {"generation": "generation@v2:abc"})
    assert d.citations_added == ["e#0"] and d.citations_removed == ["d#0"]
    assert d.scores == {"f": (0.5, 0.75), "r": (0.4, None)}
    text = render_diff(d)
    assert "-Capital." in text and "+City." in text and "f: 0.500 -> 0.750 (+0.250)" in text
    assert d.to_dict()["changed"]["stop_reason"] == {
        "before": "accepted",
        "after": "max_iterations",
    }


# -- recorded outputs -----------------------------------------------------------------------


def test_fingerprint_ignores_the_envelope_but_not_the_content() -> None:
    from schemas import GenerationTask
    from schemas.fingerprint import input_fingerprint

    a = GenerationTask(job_id="j1", step_id="j1/1/generation/0", tenant="t", query="Who?")
    b = GenerationTask(
        job_id="j2", step_id="j2/2/generation/0", tenant="t", query="Who?", iteration=2, attempt=3
    )
    c = GenerationTask(
        job_id="j1", step_id="j1/1/generation/0", tenant="t", query="Who?", feedback="Say more."
    )
    assert input_fingerprint(a.to_dict()) == input_fingerprint(b.to_dict())
    assert input_fingerprint(a.to_dict()) != input_fingerprint(c.to_dict())
    # a field added later keeps, at its default, the fingerprints recorded before it existed
    before = {k: v for k, v in a.to_dict().items() if k != "reread"}
    assert input_fingerprint(a.to_dict()) == input_fingerprint(before)
    reread = a.model_copy(update={"reread": True})
    assert input_fingerprint(reread.to_dict()) != input_fingerprint(a.to_dict())


class CountingProvider:
    name = "counting"
    web_enabled = False

    def __init__(self, version: str) -> None:
        self.version, self.calls = version, 0

    def prompt_ref(self, stage: str) -> str:
        return f"{stage}@{self.version}"

    def generate(self, task: object) -> object:
        from schemas import GenerationResult, GenerationTask

        assert isinstance(task, GenerationTask)
        self.calls += 1
        return GenerationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            answer="fresh",
            prompt_version=self.prompt_ref("generation"),
            usage=Usage(llm_calls=1, output_tokens=5),
        )


def test_replaying_provider_reuses_only_same_input_and_same_prompt() -> None:
    from schemas import GenerationResult, GenerationTask
    from schemas.fingerprint import input_fingerprint, recorded_output
    from workers.providers.replaying import ReplayingProvider

    old = GenerationTask(job_id="j1", step_id="j1/1/generation/0", tenant="t", query="Who?")
    recorded = GenerationResult(
        job_id="j1",
        step_id=old.step_id,
        answer="recorded",
        prompt_version="generation@v1",
        usage=Usage(llm_calls=1, output_tokens=9),
    )
    recs = {("generation", input_fingerprint(old.to_dict())): recorded_output(recorded)}
    new = old.model_copy(update={"job_id": "j2", "step_id": "j2/1/generation/0"})

    inner = CountingProvider("v1")
    replaying = ReplayingProvider(inner, recs)  # type: ignore[arg-type]
    r = replaying.generate(new)
    assert (r.answer, r.job_id, r.step_id, r.usage.llm_calls, inner.calls) == (
        "recorded",
        "j2",
        "j2/1/generation/0",
        0,
        0,
    )
    assert replaying.reused == ["j2/1/generation/0"]
    other = new.model_copy(update={"query": "Why?"})
    assert replaying.generate(other).answer == "fresh" and inner.calls == 1
    pinned = ReplayingProvider(CountingProvider("v2"), recs)  # type: ignore[arg-type]
    assert pinned.generate(new).answer == "fresh"


def test_recordings_and_reused_steps_come_from_traces() -> None:
    from ragrelay.observe.replay import recordings, reused_steps

    def completed(step: str, sha: str, calls: int, version: str = "g@v1") -> TraceEvent:
        return TraceEvent(
            job_id="j",
            type="step.completed",
            at=1.0,
            stage="generation",
            step_id=step,
            detail={
                "input_sha": sha,
                "prompt_version": version,
                "usage": {"llm_calls": calls},
                "result": {"answer": "a", "prompt_version": version},
            },
        )

    recorded = recordings([completed("j/1/generation/0", "aa", 1)])
    assert recorded == [
        {
            "stage": "generation",
            "step_id": "j/1/generation/0",
            "input_sha": "aa",
            "result": {"answer": "a", "prompt_version": "g@v1"},
        }
    ]
    replay = [
        completed("k/1/generation/0", "aa", 0),
        completed("k/2/generation/0", "bb", 0),
        completed("k/3/generation/0", "aa", 1),
        completed("k/4/generation/0", "aa", 0, "g@v2"),
    ]
    assert reused_steps(replay, recorded) == ["k/1/generation/0"]

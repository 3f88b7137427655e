"""The pure state machine, driven event by event without Redis."""

from __future__ import annotations

from typing import Any

from orchestrator.machine import Dispatch, Finish, MachineConfig, Transition, advance
from orchestrator.state import JobState
from schemas import (
    AnalysisResult,
    Budget,
    Chunk,
    Citation,
    EvaluationResult,
    GenerationResult,
    JobEvent,
    JobRequest,
    RetrievalResult,
    ScoredChunk,
    Usage,
)

T0 = 1_000.0


def new_state(**budget: Any) -> JobState:
    req = JobRequest(query="how do cats purr?", budget=Budget(**budget))
    return JobState(job_id="j1", request=req, created_at=T0, deadline_at=T0 + req.budget.deadline_s)


def result_event(step: str, stage: str, payload: Any, at: float = T0 + 1) -> JobEvent:
    return JobEvent(
        type="step.result", job_id="j1", step_id=step, stage=stage, at=at, payload=payload.to_dict()
    )


def dispatched(t: Transition, stage: str) -> list[Dispatch]:
    return [c for c in t.commands if isinstance(c, Dispatch) and c.stage == stage]


def chunk(i: int) -> Chunk:
    return Chunk(chunk_id=f"d{i}#0", doc_id=f"d{i}", text=f"cats purr {i}")


def run_iteration(
    state: JobState,
    verdict: str,
    *,
    score: float = 0.5,
    usage: Usage | None = None,
    answer: str | None = None,
) -> tuple[JobState, Transition]:
    """Feed analysis → retrieval (2 shards) → generation → evaluation results."""
    it = state.iteration
    t = advance(
        state,
        result_event(
            f"j1/{it}/analysis/0",
            "analysis",
            AnalysisResult(
                job_id="j1",
                step_id=f"j1/{it}/analysis/0",
                rewrites=["cats purr", "purring cats"],
                usage=usage or Usage(),
            ),
        ),
    )
    shards = dispatched(t, "retrieval")
    assert len(shards) == 2
    s = t.state
    for n, d in enumerate(shards):
        t = advance(
            s,
            result_event(
                d.step_id,
                "retrieval",
                RetrievalResult(
                    job_id="j1",
                    step_id=d.step_id,
                    hits=[
                        ScoredChunk(chunk=chunk(n), score=1.0),
                        ScoredChunk(chunk=chunk(9), score=0.5),
                    ],
                ),
            ),
        )
        s = t.state
    gen = dispatched(t, "generation")
    assert len(gen) == 1
    t = advance(
        s,
        result_event(
            gen[0].step_id,
            "generation",
            GenerationResult(
                job_id="j1",
                step_id=gen[0].step_id,
                answer=answer or f"answer {it}",
                citations=[Citation(chunk_id="d9#0", doc_id="d9")],
                usage=usage or Usage(),
            ),
        ),
    )
    ev = dispatched(t, "evaluation")
    assert len(ev) == 1
    t = advance(
        t.state,
        result_event(
            ev[0].step_id,
            "evaluation",
            EvaluationResult(
                job_id="j1",
                step_id=ev[0].step_id,
                verdict=verdict,  # type: ignore[arg-type]
                scores={"faithfulness": score, "relevance": score},
                feedback="more detail",
                usage=usage or Usage(),
            ),
        ),
    )
    return t.state, t


def submitted(state: JobState) -> JobState:
    t = advance(state, JobEvent(type="job.submitted", job_id="j1", at=T0))
    assert [c.stage for c in t.commands if isinstance(c, Dispatch)] == ["analysis"]
    return t.state


def test_accepted_answer_finishes_succeeded_with_citations() -> None:
    _state, t = run_iteration(submitted(new_state()), "accept", score=0.9)
    finish = [c for c in t.commands if isinstance(c, Finish)]
    assert len(finish) == 1
    res = finish[0].result
    assert (res.status, res.stop_reason, res.iterations) == ("succeeded", "accepted", 1)
    assert res.answer == "answer 1" and res.citations[0].chunk_id == "d9#0"


def test_always_revise_stops_after_exactly_max_iterations_with_best_answer() -> None:
    state = submitted(new_state(max_iterations=3))
    scores = [0.4, 0.8, 0.6]
    for i, score in enumerate(scores, start=1):
        assert state.iteration == i
        state, t = run_iteration(state, "revise", score=score)
    finish = [c for c in t.commands if isinstance(c, Finish)]
    assert len(finish) == 1
    res = finish[0].result
    assert res.status == "budget_exhausted"
    assert res.stop_reason == "max_iterations"
    assert res.iterations == 3
    assert res.answer == "answer 2"  # the best-scored answer so far, not the last


def test_a_revision_repeating_the_best_answer_stops_the_loop() -> None:
    state = submitted(new_state(max_iterations=3))
    state, _ = run_iteration(state, "revise", score=0.4, answer="same answer")
    state, t = run_iteration(state, "revise", score=0.5, answer="same answer")
    finish = [c for c in t.commands if isinstance(c, Finish)]
    assert not dispatched(t, "analysis") and len(finish) == 1
    res = finish[0].result
    assert (res.status, res.stop_reason, res.iterations) == (
        "budget_exhausted",
        "unchanged_answer",
        2,
    )
    assert res.answer == "same answer"


def test_a_revision_with_a_new_answer_goes_on_looping() -> None:
    state = submitted(new_state(max_iterations=3))
    state, _ = run_iteration(state, "revise", answer="first answer")
    state, t = run_iteration(state, "revise", answer="second answer")
    assert not [c for c in t.commands if isinstance(c, Finish)]
    assert len(dispatched(t, "analysis")) == 1 and state.iteration == 3


def test_feedback_reaches_the_next_analysis() -> None:
    state = submitted(new_state(max_iterations=2))
    state, t = run_iteration(state, "revise")
    analysis = dispatched(t, "analysis")
    assert analysis[0].payload["feedback"] == "more detail"
    assert analysis[0].payload["previous_rewrites"] == ["cats purr", "purring cats"]


def test_redelivered_result_does_not_advance_job_twice() -> None:
    state = submitted(new_state())
    event = result_event(
        "j1/1/analysis/0",
        "analysis",
        AnalysisResult(
            job_id="j1", step_id="j1/1/analysis/0", rewrites=["q"], usage=Usage(llm_calls=1)
        ),
    )
    first = advance(state, event)
    again = advance(first.state, event)
    assert first.changed and len(dispatched(first, "retrieval")) == 1
    assert not again.changed and again.commands == []
    assert again.state.usage.llm_calls == 1


def test_failed_retrieval_shard_degrades_instead_of_failing() -> None:
    state = submitted(new_state())
    t = advance(
        state,
        result_event(
            "j1/1/analysis/0",
            "analysis",
            AnalysisResult(job_id="j1", step_id="j1/1/analysis/0", rewrites=["a", "b"]),
        ),
    )
    shards = dispatched(t, "retrieval")
    t = advance(
        t.state,
        JobEvent(
            type="step.failed",
            job_id="j1",
            step_id=shards[0].step_id,
            at=T0 + 2,
            error="index offline",
            error_kind="permanent",
        ),
    )
    t = advance(
        t.state,
        result_event(
            shards[1].step_id,
            "retrieval",
            RetrievalResult(
                job_id="j1", step_id=shards[1].step_id, hits=[ScoredChunk(chunk=chunk(1), score=1)]
            ),
        ),
    )
    assert len(dispatched(t, "generation")) == 1
    assert t.state.degraded and "index offline" in t.state.degraded[0]


def test_failed_generation_fails_the_job_with_the_reason() -> None:
    state = submitted(new_state())
    state, _ = run_iteration(state, "revise")
    t = advance(
        state,
        result_event(
            "j1/2/analysis/0",
            "analysis",
            AnalysisResult(job_id="j1", step_id="j1/2/analysis/0", rewrites=["a"]),
        ),
    )
    r = dispatched(t, "retrieval")[0]
    t = advance(
        t.state,
        result_event(
            r.step_id,
            "retrieval",
            RetrievalResult(
                job_id="j1", step_id=r.step_id, hits=[ScoredChunk(chunk=chunk(1), score=1)]
            ),
        ),
    )
    gen = dispatched(t, "generation")[0]
    t = advance(
        t.state,
        JobEvent(
            type="step.failed",
            job_id="j1",
            step_id=gen.step_id,
            at=T0 + 3,
            error="bad request",
            error_kind="permanent",
        ),
    )
    res = next(c for c in t.commands if isinstance(c, Finish)).result
    assert res.status == "failed" and res.stop_reason == "step_failed:generation"
    assert "bad request" in (res.error or "")


def test_timeout_redispatches_then_fails_naming_the_step() -> None:
    state = submitted(new_state())
    cfg = MachineConfig(step_max_attempts=2)
    timeout = JobEvent(
        type="step.timeout",
        job_id="j1",
        step_id="j1/1/analysis/0",
        at=T0 + 5,
        payload={"attempt": 1},
    )
    t = advance(state, timeout, cfg)
    again = dispatched(t, "analysis")
    assert again[0].attempt == 2 and again[0].payload["attempt"] == 2
    assert not advance(t.state, timeout, cfg).changed  # the same timeout seen twice
    t = advance(t.state, timeout.model_copy(update={"payload": {"attempt": 2}}), cfg)
    res = next(c for c in t.commands if isinstance(c, Finish)).result
    assert res.status == "failed" and res.stop_reason == "step_timeout:analysis"


def test_deadline_ends_with_best_answer_so_far() -> None:
    state = submitted(new_state(max_iterations=3))
    state, _ = run_iteration(state, "revise", score=0.7)
    t = advance(state, JobEvent(type="job.deadline", job_id="j1", at=T0 + 999))
    res = next(c for c in t.commands if isinstance(c, Finish)).result
    assert (res.status, res.stop_reason, res.answer) == ("budget_exhausted", "deadline", "answer 1")


def test_llm_call_budget_stops_before_the_next_dispatch() -> None:
    state = submitted(new_state(max_llm_calls=3, max_iterations=5))
    state, t = run_iteration(state, "revise", usage=Usage(llm_calls=1))
    res = next(c for c in t.commands if isinstance(c, Finish)).result
    assert res.status == "budget_exhausted" and res.stop_reason == "max_llm_calls"
    assert not dispatched(t, "analysis")


def test_citation_of_unretrieved_chunk_is_dropped_and_flagged() -> None:
    state = submitted(new_state())
    t = advance(
        state,
        result_event(
            "j1/1/analysis/0",
            "analysis",
            AnalysisResult(job_id="j1", step_id="j1/1/analysis/0", rewrites=["a"]),
        ),
    )
    r = dispatched(t, "retrieval")[0]
    t = advance(
        t.state,
        result_event(
            r.step_id,
            "retrieval",
            RetrievalResult(
                job_id="j1", step_id=r.step_id, hits=[ScoredChunk(chunk=chunk(1), score=1)]
            ),
        ),
    )
    gen = dispatched(t, "generation")[0]
    t = advance(
        t.state,
        result_event(
            gen.step_id,
            "generation",
            GenerationResult(
                job_id="j1",
                step_id=gen.step_id,
                answer="x",
                citations=[
                    Citation(chunk_id="d1#0", doc_id="d1"),
                    Citation(chunk_id="evil#0", doc_id="e"),
                ],
            ),
        ),
    )
    ev = dispatched(t, "evaluation")[0]
    assert [c["chunk_id"] for c in ev.payload["citations"]] == ["d1#0"]
    assert any(e.type == "guardrail.citation_dropped" for e in t.trace)


def test_no_hits_answers_no_relevant_documents_without_citations() -> None:
    state = submitted(new_state())
    t = advance(
        state,
        result_event(
            "j1/1/analysis/0",
            "analysis",
            AnalysisResult(job_id="j1", step_id="j1/1/analysis/0", rewrites=["a"]),
        ),
    )
    r = dispatched(t, "retrieval")[0]
    t = advance(
        t.state,
        result_event(
            r.step_id, "retrieval", RetrievalResult(job_id="j1", step_id=r.step_id, hits=[])
        ),
    )
    res = next(c for c in t.commands if isinstance(c, Finish)).result
    assert res.stop_reason == "no_relevant_documents" and res.citations == []


def test_final_job_ignores_everything() -> None:
    state, _ = run_iteration(submitted(new_state()), "accept")
    assert not advance(state, JobEvent(type="job.deadline", job_id="j1", at=T0 + 1e6)).changed


def test_a_revise_iteration_keeps_the_last_context_in_its_fusion() -> None:
    state = submitted(new_state(max_iterations=2))
    state, _ = run_iteration(state, "revise")
    first_context = [c.chunk_id for c in state.context]
    assert first_context[0] == "d9#0"  # in both shards of iteration 1
    # iteration 2's shards find only new chunks; the old best must still be in the context
    t = advance(
        state,
        result_event(
            "j1/2/analysis/0",
            "analysis",
            AnalysisResult(
                job_id="j1", step_id="j1/2/analysis/0", rewrites=["feline purring", "purr sound"]
            ),
        ),
    )
    s = t.state
    for n, d in enumerate(dispatched(t, "retrieval")):
        t = advance(
            s,
            result_event(
                d.step_id,
                "retrieval",
                RetrievalResult(
                    job_id="j1",
                    step_id=d.step_id,
                    hits=[ScoredChunk(chunk=chunk(20 + n), score=1.0)],
                ),
            ),
        )
        s = t.state
    context = [c.chunk_id for c in s.context]
    assert context[0] == "d9#0"  # weighted like both new lists together: it stays first
    assert {"d20#0", "d21#0"} <= set(context)
    gen = dispatched(t, "generation")
    assert [c["chunk_id"] for c in gen[0].payload["context"]] == context


def test_each_source_counts_once_however_many_rewrites_queried_it() -> None:
    state = submitted(new_state())
    t = advance(
        state,
        result_event(
            "j1/1/analysis/0",
            "analysis",
            AnalysisResult(
                job_id="j1",
                step_id="j1/1/analysis/0",
                rewrites=["cats purr", "purring cats", "purr"],
                sources=["internal", "web"],
            ),
        ),
    )
    s = t.state
    shards = dispatched(t, "retrieval")
    assert [d.payload["source"] for d in shards] == ["internal"] * 3 + ["web"]
    web = Chunk(chunk_id="web:1", doc_id="https://example.org", text="cats purr", source="web")
    for d in shards:
        hits = (
            [ScoredChunk(chunk=web, score=1.0)]
            if d.payload["source"] == "web"
            else [ScoredChunk(chunk=chunk(n), score=1.0) for n in range(8)]
        )
        t = advance(
            s,
            result_event(
                d.step_id,
                "retrieval",
                RetrievalResult(
                    job_id="j1", step_id=d.step_id, source=d.payload["source"], hits=hits
                ),
            ),
        )
        s = t.state
    # the three internal lists agree on d0..d7; fused as one source, the web's first hit ties
    # the internal first and beats the rest (plain RRF would put it below all eight)
    assert [c.chunk_id for c in s.context][:2] in (["d0#0", "web:1"], ["web:1", "d0#0"])


def test_a_reread_verdict_generates_again_from_the_same_context() -> None:
    state = submitted(new_state(max_iterations=3))
    state, t = run_iteration(state, "reread", score=0.9, answer="close call")
    assert not dispatched(t, "analysis") and not dispatched(t, "retrieval")
    (gen,) = dispatched(t, "generation")
    assert gen.step_id == "j1/2/generation/0" and state.iteration == 2
    assert gen.payload["reread"] is True and gen.payload["feedback"] == "more detail"
    assert [c["chunk_id"] for c in gen.payload["context"]] == [c.chunk_id for c in state.context]
    t = advance(
        state,
        result_event(
            gen.step_id,
            "generation",
            GenerationResult(
                job_id="j1",
                step_id=gen.step_id,
                answer="read again",
                confidence=0.8,
                citations=[Citation(chunk_id="d9#0", doc_id="d9")],
            ),
        ),
    )
    (ev,) = dispatched(t, "evaluation")
    assert ev.payload["confidence"] == 0.8 and ev.payload["answer"] == "read again"
    t = advance(
        t.state,
        result_event(
            ev.step_id,
            "evaluation",
            EvaluationResult(
                job_id="j1", step_id=ev.step_id, verdict="accept", scores={"faithfulness": 0.7}
            ),
        ),
    )
    (finish,) = [c for c in t.commands if isinstance(c, Finish)]
    assert (finish.result.stop_reason, finish.result.iterations) == ("accepted", 2)
    assert finish.result.answer == "read again"


def test_a_reread_verdict_on_the_last_iteration_ends_the_job() -> None:
    _state, t = run_iteration(submitted(new_state(max_iterations=1)), "reread", answer="only")
    (finish,) = [c for c in t.commands if isinstance(c, Finish)]
    assert not dispatched(t, "generation")
    assert (finish.result.stop_reason, finish.result.answer) == ("max_iterations", "only")

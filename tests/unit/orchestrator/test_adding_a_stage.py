"""The worked example of docs/architecture.md, "Adding a stage": a toy fifth stage,
``moderation``, between generation and evaluation, added with only

1. a spec in the registry (its task and result models, queue, pool),
2. its handler (a pure function, run here through the real task base),
3. its transition (what follows its result; the one edge into it replaces
   generation's).

The registry and the machine are built in the test (``MachineConfig(stages=...,
transitions=...)``), so nothing global changes.
"""

from __future__ import annotations

import os
from typing import Any

import fakeredis
from pydantic import Field

from bus.app import create_app
from bus.keys import Keys
from bus.runtime import Runtime, attach
from bus.settings import Settings
from bus.task import StageTaskBase
from orchestrator.machine import (
    TRANSITIONS,
    Finish,
    MachineConfig,
    Transition,
    advance,
    dispatch,
)
from orchestrator.state import PendingStep
from schemas import (
    STAGE_SPECS,
    AnalysisResult,
    Chunk,
    Citation,
    EvaluationResult,
    GenerationResult,
    GenerationTask,
    JobEvent,
    RetrievalResult,
    ScoredChunk,
    StageResultBase,
    StageSpec,
    TaskEnvelope,
    step_id,
)
from tests.unit.orchestrator.test_machine import T0, dispatched, new_state, run_iteration

# -- 1. the registry: one spec ---------------------------------------------------------------


class ModerationTask(TaskEnvelope):
    answer: str
    generation: dict[str, Any] = Field(default_factory=dict)  # the result being moderated


class ModerationResult(StageResultBase):
    answer: str
    redacted: int = 0


MODERATION = StageSpec(
    "moderation",
    ModerationTask,
    ModerationResult,
    queue="moderation",
    calls_llm=False,
    default_pool="threads",
)
STAGES = {**STAGE_SPECS, "moderation": MODERATION}


# -- 2. its handler: plain function, message in, result out ------------------------------------


def handle(msg: ModerationTask, deps: object = None) -> ModerationResult:
    words = msg.answer.split()
    kept = ["[redacted]" if w.lower().strip(".,") == "darn" else w for w in words]
    return ModerationResult(
        job_id=msg.job_id,
        step_id=msg.step_id,
        answer=" ".join(kept),
        redacted=sum(a != b for a, b in zip(words, kept, strict=True)),
    )


# -- 3. its transition: the edge in (generation now hands over) and what follows its result ---


def generation_to_moderation(
    t: Transition, pending: PendingStep, r: GenerationResult, now: float, cfg: MachineConfig
) -> None:
    s = t.state
    task = ModerationTask(
        job_id=s.job_id,
        step_id=step_id(s.job_id, s.iteration, "moderation"),
        tenant=s.request.tenant,
        iteration=s.iteration,
        answer=r.answer,
        generation=r.to_dict(),
    )
    dispatch(t, "moderation", task.step_id, task.to_dict(), now)


def after_moderation(
    t: Transition, pending: PendingStep, r: ModerationResult, now: float, cfg: MachineConfig
) -> None:
    generated = GenerationResult.model_validate(pending.payload["generation"])
    generated.answer = r.answer
    TRANSITIONS["generation"](t, pending, generated, now, cfg)  # on to evaluation as before


CONFIG = MachineConfig(
    stages=STAGES,
    transitions={
        **TRANSITIONS,
        "generation": generation_to_moderation,
        "moderation": after_moderation,
    },
)


# -- the stage at work ------------------------------------------------------------------------


def _run_through_the_task_base(payload: dict[str, Any]) -> dict[str, Any]:
    """Register the toy stage's task from its spec and run it as a worker would; return the
    result event it appends to the events stream."""
    settings = Settings(redis_url=None)
    app = create_app(settings)
    client = fakeredis.FakeRedis()
    runtime = attach(app, Runtime(settings=settings))
    runtime._redis, runtime._pid = client, os.getpid()  # the events land on fakeredis
    base = type(
        "ModerationTaskBase",
        (StageTaskBase,),
        {"abstract": True, "message_model": MODERATION.task_model, "stage": "moderation"},
    )

    def run(self: StageTaskBase, msg: ModerationTask) -> ModerationResult:
        return handle(msg)

    app.task(name=MODERATION.task_name, base=base, bind=True, shared=False)(run)
    app.tasks[MODERATION.task_name].apply(args=[payload], task_id="toy-1")
    rows: Any = client.xrange(Keys().events)
    event = JobEvent.model_validate_json(rows[-1][1][b"event"])
    assert event.type == "step.result" and event.stage == "moderation"
    return event.payload


def test_a_toy_fifth_stage_runs_between_generation_and_evaluation() -> None:
    state = new_state(max_iterations=1)
    t = advance(state, JobEvent(type="job.submitted", job_id="j1", at=T0), CONFIG)
    # analysis and retrieval as before; generation's result now goes to moderation
    t = _until_generation_result(t.state, answer="Cats purr, darn it.")
    (moderation,) = dispatched(t, "moderation")
    assert dispatched(t, "evaluation") == [] and t.state.phase == "generation"

    payload = _run_through_the_task_base(moderation.payload)
    t = advance(
        t.state,
        JobEvent(
            type="step.result",
            job_id="j1",
            step_id=moderation.step_id,
            stage="moderation",
            at=T0 + 3,
            payload=payload,
        ),
        CONFIG,
    )
    (evaluation,) = dispatched(t, "evaluation")
    assert evaluation.payload["answer"] == "Cats purr, [redacted] it."

    t = advance(
        t.state,
        JobEvent(
            type="step.result",
            job_id="j1",
            step_id=evaluation.step_id,
            stage="evaluation",
            at=T0 + 4,
            payload=EvaluationResult(
                job_id="j1", step_id=evaluation.step_id, verdict="accept", scores={"f": 1.0}
            ).to_dict(),
        ),
        CONFIG,
    )
    (finish,) = [c for c in t.commands if isinstance(c, Finish)]
    assert finish.result.answer == "Cats purr, [redacted] it."
    assert finish.result.status == "succeeded"
    assert t.state.pending == {}


def test_the_stock_machine_is_unchanged_by_the_toy() -> None:
    started = advance(
        new_state(max_iterations=1), JobEvent(type="job.submitted", job_id="j1", at=T0)
    )
    _, t = run_iteration(started.state, "accept")
    assert any(isinstance(c, Finish) for c in t.commands) and dispatched(t, "moderation") == []
    assert "moderation" not in STAGE_SPECS


def _until_generation_result(state: Any, *, answer: str) -> Transition:
    """analysis → the retrieval shards → the generation result, under ``CONFIG``."""
    t = advance(
        state,
        JobEvent(
            type="step.result",
            job_id="j1",
            step_id="j1/1/analysis/0",
            stage="analysis",
            at=T0 + 1,
            payload=AnalysisResult(
                job_id="j1", step_id="j1/1/analysis/0", rewrites=["cats purr"]
            ).to_dict(),
        ),
        CONFIG,
    )
    chunk = Chunk(chunk_id="d1#0", doc_id="d1", text="cats purr")
    for shard in dispatched(t, "retrieval"):
        t = advance(
            t.state,
            JobEvent(
                type="step.result",
                job_id="j1",
                step_id=shard.step_id,
                stage="retrieval",
                at=T0 + 2,
                payload=RetrievalResult(
                    job_id="j1", step_id=shard.step_id, hits=[ScoredChunk(chunk=chunk, score=1.0)]
                ).to_dict(),
            ),
            CONFIG,
        )
    (gen,) = dispatched(t, "generation")
    assert GenerationTask.model_validate(gen.payload).context == [chunk]
    return advance(
        t.state,
        JobEvent(
            type="step.result",
            job_id="j1",
            step_id=gen.step_id,
            stage="generation",
            at=T0 + 2.5,
            payload=GenerationResult(
                job_id="j1",
                step_id=gen.step_id,
                answer=answer,
                citations=[Citation(chunk_id="d1#0", doc_id="d1")],
            ).to_dict(),
        ),
        CONFIG,
    )

"""Zero-cost stages for the overhead benchmark: minimal valid results, no model, no store.

``noop_result(stage, msg)`` answers any stage task with the smallest result that still walks
the whole pipeline once: analysis routes to one internal shard, retrieval returns one hit,
generation cites it, evaluation accepts. What remains is what ragrelay itself costs: message
validation, the task base, the result event, the orchestrator's transition and dispatch.

``register(app, settings)`` registers the four stage tasks with these handlers through the
same task base as ``workers.tasks`` (same names, queues, validation and result events), for
processes started only to measure the pipeline (``ragrelay bench overhead``).
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from bus.runtime import Runtime, attach
from bus.settings import Settings
from bus.task import StageTaskBase
from schemas import (
    STAGE_SPECS,
    AnalysisResult,
    AnalysisTask,
    Chunk,
    Citation,
    EvaluationResult,
    GenerationResult,
    RetrievalResult,
    RetrievalTask,
    ScoredChunk,
    Stage,
    StageResultBase,
    TaskEnvelope,
)

NOOP_CHUNK = Chunk(chunk_id="noop#0", doc_id="noop", title="noop", text="noop")


def noop_result(stage: str, msg: TaskEnvelope) -> StageResultBase:
    """The minimal valid result of ``stage`` for ``msg`` (one iteration, one shard)."""
    ids: dict[str, Any] = {"job_id": msg.job_id, "step_id": msg.step_id}
    if stage == "analysis":
        query = msg.query if isinstance(msg, AnalysisTask) else "noop"
        return AnalysisResult(**ids, rewrites=[query], sources=["internal"])
    if stage == "retrieval":
        query = msg.query if isinstance(msg, RetrievalTask) else "noop"
        hit = ScoredChunk(chunk=NOOP_CHUNK, score=1.0, rank=1, retriever="noop")
        return RetrievalResult(**ids, source="internal", query=query, hits=[hit])
    if stage == "generation":
        cite = Citation(chunk_id=NOOP_CHUNK.chunk_id, doc_id=NOOP_CHUNK.doc_id)
        return GenerationResult(**ids, answer="noop", citations=[cite])
    if stage == "evaluation":
        return EvaluationResult(
            **ids,
            verdict="accept",
            scores={"faithfulness": 1.0, "relevance": 1.0, "completeness": 1.0},
        )
    raise ValueError(f"no zero-cost result for stage {stage!r}")


def register(
    app: Celery,
    settings: Settings,
    *,
    delays_s: dict[str, float] | None = None,
) -> Runtime[None]:
    """Register the four stage tasks answering with :func:`noop_result`.

    ``delays_s`` makes a stage sleep first (an I/O-bound stand-in, e.g. an LLM call).
    """
    runtime: Runtime[None] = attach(app, Runtime(settings=settings))
    for stage in STAGE_SPECS:
        _register_stage(app, stage, (delays_s or {}).get(stage, 0.0))
    return runtime


def _register_stage(app: Celery, stage: Stage, delay_s: float) -> None:
    spec = STAGE_SPECS[stage]
    base = type(
        f"Noop{stage.title()}Task",
        (StageTaskBase,),
        {"abstract": True, "message_model": spec.task_model, "stage": stage},
    )

    def run(self: StageTaskBase, msg: Any) -> Any:
        if delay_s > 0:
            time.sleep(delay_s)
        return noop_result(stage, msg)

    run.__name__ = f"run_{stage}"
    app.task(name=spec.task_name, base=base, bind=True)(run)

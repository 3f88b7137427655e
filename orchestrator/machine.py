"""The pure state machine: ``advance(state, event) -> Transition``. No I/O.

A transition returns the new state, the commands to carry out (dispatch a step, publish the
final result) and the trace events to append. Applying an event twice changes nothing the
second time: results for steps that are not pending are ignored, so redeliveries are safe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from orchestrator.budget import exhausted, limits_for
from orchestrator.fusion import rrf
from orchestrator.state import Answer, JobState, PendingStep, build_result
from schemas import (
    AnalysisResult,
    AnalysisTask,
    EvaluationResult,
    EvaluationTask,
    GenerationResult,
    GenerationTask,
    JobEvent,
    JobResult,
    RetrievalResult,
    RetrievalTask,
    ScoredChunk,
    StageResultBase,
    TraceEvent,
    Usage,
    step_id,
)
from schemas.fingerprint import input_fingerprint, recorded_output
from schemas.stages import STAGE_SPECS, Stage, StageSpec

NO_DOCUMENTS_ANSWER = "No relevant documents were found for this question."


@dataclass(frozen=True)
class MachineConfig:
    step_max_attempts: int = 3
    retrieval_k: int = 10
    context_k: int = 6
    max_rewrites: int = 3
    # The stages and what follows each one's result: the registry and ``TRANSITIONS`` below
    # unless a caller (a test adding a toy stage, docs/architecture.md) passes its own.
    # (Read-only maps keyed by the Stage literal, read here by any stage name.)
    stages: Mapping[str, StageSpec] = field(
        default_factory=lambda: cast(Mapping[str, StageSpec], STAGE_SPECS)
    )
    transitions: Mapping[str, ResultTransition] = field(
        default_factory=lambda: cast(Mapping[str, ResultTransition], TRANSITIONS)
    )


@dataclass(frozen=True)
class Dispatch:
    stage: str  # a name in ``MachineConfig.stages`` (the ``Stage`` literal for the registry)
    step_id: str
    attempt: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Finish:
    result: JobResult


Command = Dispatch | Finish


@dataclass
class Transition:
    state: JobState
    commands: list[Command] = field(default_factory=list)
    trace: list[TraceEvent] = field(default_factory=list)
    changed: bool = True


def unchanged(state: JobState) -> Transition:
    return Transition(state=state, changed=False)


def advance(state: JobState, event: JobEvent, config: MachineConfig | None = None) -> Transition:
    """Apply one event to a job. Pure: same inputs, same outputs."""
    cfg = config or MachineConfig()
    if state.final:
        return unchanged(state)
    new = state.model_copy(deep=True)
    t = Transition(state=new)
    if event.type == "job.submitted":
        if new.phase != "new":
            return unchanged(state)
        t.trace.append(_trace(new, event, "job.started", outcome="ok"))
        _start_iteration(t, event.at, cfg)
    elif event.type == "job.deadline":
        _finish(t, event.at, "budget_exhausted", "deadline")
    elif event.type == "step.timeout":
        _on_timeout(t, event, cfg)
    elif event.type == "step.failed":
        _on_failed(t, event, cfg)
    elif event.type == "step.result":
        _on_result(t, event, cfg)
    else:  # pragma: no cover - JobEvent.type is a closed Literal
        return unchanged(state)
    return t if t.changed else unchanged(state)


# -- events ----------------------------------------------------------------------------------


def _on_result(t: Transition, event: JobEvent, cfg: MachineConfig) -> None:
    s = t.state
    pending = s.pending.get(event.step_id or "")
    if pending is None:
        t.changed = False  # a duplicate or late result: already applied
        return
    try:
        spec = cfg.stages[pending.stage]
        result = spec.result_model.model_validate(event.payload)
    except (ValidationError, KeyError) as exc:
        del s.pending[pending.step_id]
        _fail(t, event.at, f"invalid {pending.stage} result: {exc}", f"step_failed:{pending.stage}")
        return
    del s.pending[pending.step_id]
    s.usage = s.usage + result.usage
    t.trace.append(_completed(s, pending, result, spec))
    cfg.transitions[pending.stage](t, pending, result, event.at, cfg)


def _on_failed(t: Transition, event: JobEvent, cfg: MachineConfig) -> None:
    s = t.state
    pending = s.pending.pop(event.step_id or "", None)
    if pending is None:
        t.changed = False
        return
    reason = event.error or "step failed"
    t.trace.append(
        _trace(
            s,
            event,
            "step.failed",
            stage=pending.stage,
            step=pending.step_id,
            outcome=event.error_kind or "failed",
            detail={"error": reason},
        )
    )
    if pending.stage == "retrieval":
        _degrade(t, pending, reason, event.at, cfg)
        return
    _fail(
        t,
        event.at,
        f"{pending.stage} step {pending.step_id} failed: {reason}",
        f"step_failed:{pending.stage}",
    )


def _on_timeout(t: Transition, event: JobEvent, cfg: MachineConfig) -> None:
    s = t.state
    pending = s.pending.get(event.step_id or "")
    if pending is None or pending.attempt != event.payload.get("attempt", pending.attempt):
        t.changed = False  # the step finished, or was already re-sent for this timeout
        return
    t.trace.append(
        _trace(
            s,
            event,
            "step.timeout",
            stage=pending.stage,
            step=pending.step_id,
            outcome="timeout",
            detail={"attempt": pending.attempt},
        )
    )
    if pending.attempt < cfg.step_max_attempts:
        payload = dict(pending.payload, attempt=pending.attempt + 1)
        dispatch(t, pending.stage, pending.step_id, payload, event.at, attempt=pending.attempt + 1)
        return
    del s.pending[pending.step_id]
    if pending.stage == "retrieval":
        _degrade(t, pending, "timed out", event.at, cfg)
        return
    _fail(
        t,
        event.at,
        f"step {pending.step_id} did not answer after {pending.attempt} attempts",
        f"step_timeout:{pending.stage}",
    )


# -- stage transitions ---------------------------------------------------------------------


def _start_iteration(t: Transition, now: float, cfg: MachineConfig) -> None:
    s = t.state
    if _stop_for_budget(t, now):
        return
    req = s.request
    task = AnalysisTask(
        job_id=s.job_id,
        step_id=step_id(s.job_id, s.iteration, "analysis"),
        tenant=req.tenant,
        iteration=s.iteration,
        limits=limits_for(req.budget, s.usage, deadline_at=s.deadline_at),
        query=req.query,
        kind=req.kind,
        user_id=req.user_id,
        feedback=s.feedback,
        previous_rewrites=list(s.tried_rewrites),
        previous_answer=s.answer.text if s.answer else None,
        email=_email_fields(s),
    )
    s.phase = "analysis"
    s.shard_hits = {}
    dispatch(t, "analysis", task.step_id, task.to_dict(), now)


def _after_analysis(
    t: Transition, pending: PendingStep, r: AnalysisResult, now: float, cfg: MachineConfig
) -> None:
    s = t.state
    s.triage = r.triage or s.triage
    if s.request.kind == "email_reply" and r.triage in ("spam", "no_reply"):
        _finish(t, now, "succeeded", f"triage:{r.triage}")
        return
    s.rewrites = r.rewrites[: cfg.max_rewrites]
    s.tried_rewrites = list(dict.fromkeys([*s.tried_rewrites, *s.rewrites]))
    s.sources = list(r.sources)
    if not r.needs_retrieval:
        s.context = []
        _dispatch_generation(t, now)
        return
    if _stop_for_budget(t, now):
        return
    s.phase = "retrieval"
    shards: list[tuple[str, str]] = []
    if "internal" in r.sources:
        shards += [("internal", q) for q in s.rewrites]
    if "web" in r.sources:
        shards.append(("web", s.rewrites[0]))
    if "user_context" in r.sources and s.request.user_id:
        shards.append(("user_context", s.request.query))
    if "mcp" in r.sources:  # the tenant's MCP servers, asked the user's own question
        shards.append(("mcp", s.request.query))
    if not shards:
        shards = [("internal", s.rewrites[0])]
    for shard, (source, query) in enumerate(shards):
        task = RetrievalTask(
            job_id=s.job_id,
            step_id=step_id(s.job_id, s.iteration, "retrieval", shard),
            tenant=s.request.tenant,
            iteration=s.iteration,
            limits=limits_for(s.request.budget, s.usage, deadline_at=s.deadline_at),
            query=query,
            source=source,  # type: ignore[arg-type,unused-ignore]
            user_id=s.request.user_id,
            k=cfg.retrieval_k,
        )
        dispatch(t, "retrieval", task.step_id, task.to_dict(), now)


def _after_retrieval_shard(
    t: Transition, pending: PendingStep, r: RetrievalResult, now: float, cfg: MachineConfig
) -> None:
    """Fan-in: one shard's hits kept; the last shard of the iteration fuses them all."""
    s = t.state
    s.shard_hits[pending.step_id] = r.hits
    s.degraded.extend(n for n in dict.fromkeys(r.notes) if n not in s.degraded)
    if not _pending_stage(s, "retrieval"):
        _after_retrieval(t, now, cfg)


def _after_retrieval(t: Transition, now: float, cfg: MachineConfig) -> None:
    s = t.state
    lists = [s.shard_hits[k] for k in sorted(s.shard_hits) if s.shard_hits[k]]
    # Each source counts once, however many rewrites queried it: three rewrites of the
    # internal store must not drown the one web search (weights 1/n within a source).
    per_source = Counter(hits[0].chunk.source for hits in lists)
    weights = [1.0 / per_source[hits[0].chunk.source] for hits in lists]
    if s.iteration > 1 and s.context:
        # A revise iteration adds evidence; it does not throw away what the last one found:
        # the previous context counts as much as all of this iteration's lists together.
        lists.append(
            [ScoredChunk(chunk=c, score=0.0, rank=i) for i, c in enumerate(s.context, start=1)]
        )
        weights.append(max(1.0, sum(weights)))
    fused = rrf(lists, weights=weights)
    s.context = [hit.chunk for hit in fused[: cfg.context_k]]
    t.trace.append(
        TraceEvent(
            job_id=s.job_id,
            type="retrieval.fused",
            at=now,
            stage="retrieval",
            iteration=s.iteration,
            outcome="ok",
            detail={
                "chunk_ids": [h.chunk.chunk_id for h in fused[: cfg.retrieval_k]],
                "doc_ids": [h.chunk.doc_id for h in fused[: cfg.retrieval_k]],
                "degraded": len(s.degraded),
            },
        )
    )
    s.retrieved_ids = list(dict.fromkeys([*s.retrieved_ids, *(h.chunk.chunk_id for h in fused)]))
    s.shard_hits = {}
    if not s.context:
        if s.best is None:
            s.best = Answer(text=NO_DOCUMENTS_ANSWER, iteration=s.iteration, score=0.0)
            _finish(t, now, "succeeded", "no_relevant_documents")
        else:
            _finish(
                t,
                now,
                "budget_exhausted" if s.iteration > 1 else "succeeded",
                "no_relevant_documents",
            )
        return
    _dispatch_generation(t, now)


def _dispatch_generation(t: Transition, now: float, *, reread: bool = False) -> None:
    s = t.state
    if _stop_for_budget(t, now):
        return
    req = s.request
    task = GenerationTask(
        job_id=s.job_id,
        step_id=step_id(s.job_id, s.iteration, "generation"),
        tenant=req.tenant,
        iteration=s.iteration,
        limits=limits_for(req.budget, s.usage, deadline_at=s.deadline_at),
        query=req.query,
        kind=req.kind,
        context=s.context,
        feedback=s.feedback,
        email=_email_fields(s),
        reread=reread,
    )
    s.phase = "generation"
    dispatch(t, "generation", task.step_id, task.to_dict(), now)


def _after_generation(
    t: Transition, pending: PendingStep, r: GenerationResult, now: float, cfg: MachineConfig
) -> None:
    s = t.state
    allowed = {c.chunk_id for c in s.context}
    kept = [c for c in r.citations if c.chunk_id in allowed]
    dropped = [c.chunk_id for c in r.citations if c.chunk_id not in allowed]
    if dropped:
        t.trace.append(
            TraceEvent(
                job_id=s.job_id,
                type="guardrail.citation_dropped",
                at=now,
                stage="generation",
                iteration=s.iteration,
                outcome="flagged",
                detail={"chunk_ids": dropped},
            )
        )
    s.answer = Answer(
        text=r.answer, short_answer=r.short_answer, citations=kept, iteration=s.iteration
    )
    if r.no_answer and not s.context:
        s.best = s.best or Answer(
            text=r.answer or NO_DOCUMENTS_ANSWER, iteration=s.iteration, score=0.0
        )
        _finish(t, now, "succeeded", "no_relevant_documents")
        return
    if _stop_for_budget(t, now):
        return
    task = EvaluationTask(
        job_id=s.job_id,
        step_id=step_id(s.job_id, s.iteration, "evaluation"),
        tenant=s.request.tenant,
        iteration=s.iteration,
        limits=limits_for(s.request.budget, s.usage, deadline_at=s.deadline_at),
        query=s.request.query,
        answer=r.answer,
        citations=kept,
        context=s.context,
        kind=s.request.kind,
        is_last_iteration=s.iteration >= s.request.budget.max_iterations,
        no_answer=r.no_answer,
        confidence=r.confidence,
    )
    s.phase = "evaluation"
    dispatch(t, "evaluation", task.step_id, task.to_dict(), now)


def _after_evaluation(
    t: Transition, pending: PendingStep, r: EvaluationResult, now: float, cfg: MachineConfig
) -> None:
    s = t.state
    repeated = (
        s.answer is not None
        and s.best is not None
        and s.best.iteration < s.answer.iteration
        and s.best.text == s.answer.text
    )
    if s.answer is not None:
        score = sum(r.scores.values()) / len(r.scores) if r.scores else 0.0
        s.answer.score = score
        s.answer.scores = dict(r.scores)
        if s.best is None or score > s.best.score:
            s.best = s.answer.model_copy(deep=True)
    if r.verdict == "accept":
        if s.answer is not None:
            s.best = s.answer.model_copy(deep=True)
        _finish(t, now, "succeeded", "accepted")
        return
    s.feedback = r.feedback or None
    if r.suggested_rewrite:
        s.feedback = f"{s.feedback or ''} {r.suggested_rewrite}".strip()
    if s.iteration >= s.request.budget.max_iterations:
        _finish(t, now, "budget_exhausted", "max_iterations")
        return
    if s.iteration > 1 and repeated:
        # The revision found nothing new: the same answer from the same evidence. Another
        # iteration would start from the same feedback and context, so it stops here (with
        # the best answer so far, as at max_iterations) instead of spending the budget.
        _finish(t, now, "budget_exhausted", "unchanged_answer")
        return
    s.iteration += 1
    if r.verdict == "reread" and s.context:
        # A close call: the evidence stays, the generator reads it again more carefully.
        _dispatch_generation(t, now, reread=True)
        return
    _start_iteration(t, now, cfg)


# -- helpers -------------------------------------------------------------------------------


def _email_fields(s: JobState) -> dict[str, str] | None:
    """An email job's parsed message (``metadata["email"]``) as the workers receive it."""
    email = s.request.metadata.get("email") if s.request.kind == "email_reply" else None
    return {str(k): str(v) for k, v in email.items()} if isinstance(email, dict) else None


def _pending_stage(s: JobState, stage: str) -> bool:
    return any(p.stage == stage for p in s.pending.values())


def _degrade(
    t: Transition, pending: PendingStep, reason: str, now: float, cfg: MachineConfig
) -> None:
    s = t.state
    source = pending.payload.get("source", "retrieval")
    s.degraded.append(f"{pending.step_id} ({source}): {reason}")
    s.shard_hits.setdefault(pending.step_id, [])
    if not _pending_stage(s, "retrieval"):
        _after_retrieval(t, now, cfg)


def _stop_for_budget(t: Transition, now: float) -> bool:
    s = t.state
    reason = exhausted(s.request.budget, s.usage, now=now, deadline_at=s.deadline_at)
    if reason is None:
        return False
    _finish(t, now, "budget_exhausted", reason)
    return True


def dispatch(
    t: Transition, stage: str, sid: str, payload: dict[str, Any], now: float, *, attempt: int = 1
) -> None:
    """Send a step: pending in the state, a ``Dispatch`` command, a trace event."""
    s = t.state
    s.pending[sid] = PendingStep(
        step_id=sid, stage=stage, attempt=attempt, dispatched_at=now, payload=payload
    )
    t.commands.append(Dispatch(stage=stage, step_id=sid, attempt=attempt, payload=payload))
    t.trace.append(
        TraceEvent(
            job_id=s.job_id,
            type="step.dispatched",
            at=now,
            stage=stage,
            step_id=sid,
            iteration=s.iteration,
            outcome="sent",
            detail={"attempt": attempt},
        )
    )


def _fail(t: Transition, now: float, error: str, stop_reason: str) -> None:
    t.state.error = error
    _finish(t, now, "failed", stop_reason)


def _finish(t: Transition, now: float, status: str, stop_reason: str) -> None:
    s = t.state
    s.status = status  # type: ignore[assignment]
    s.stop_reason = stop_reason
    s.phase = "done"
    s.pending = {}
    result = build_result(s)
    t.commands.append(Finish(result=result))
    t.trace.append(
        TraceEvent(
            job_id=s.job_id,
            type="job.finished",
            at=now,
            iteration=s.iteration,
            outcome=status,
            detail={
                "stop_reason": stop_reason,
                "usage": s.usage.to_dict(),
                **({"error": s.error} if s.error else {}),
            },
        )
    )


def _completed(
    s: JobState, pending: PendingStep, r: StageResultBase, spec: StageSpec
) -> TraceEvent:
    detail: dict[str, Any] = {"usage": r.usage.to_dict()}
    if r.prompt_version:
        detail["prompt_version"] = r.prompt_version
    if r.model:
        detail["model"] = r.model
    if spec.calls_llm:  # what was asked and answered: `ragrelay replay` reuses it
        detail["input_sha"] = input_fingerprint(pending.payload)
        detail["result"] = recorded_output(r)
    outcome = "ok"
    if isinstance(r, EvaluationResult):
        detail["scores"] = r.scores
        detail["feedback"] = r.feedback
        outcome = r.verdict
    elif isinstance(r, RetrievalResult):
        detail["hits"] = len(r.hits)
        detail["source"] = r.source
        if r.notes:
            detail["notes"] = r.notes
    elif isinstance(r, AnalysisResult):
        detail["rewrites"] = r.rewrites
        detail["sources"] = r.sources
        if r.triage:
            detail["triage"] = r.triage
        if r.notes:
            detail["notes"] = r.notes
    elif isinstance(r, GenerationResult):
        detail["citations"] = [c.chunk_id for c in r.citations]
        if r.notes:
            detail["notes"] = r.notes
    return TraceEvent(
        job_id=s.job_id,
        type="step.completed",
        at=r.ended_at or 0.0,
        stage=pending.stage,
        step_id=pending.step_id,
        iteration=s.iteration,
        worker_host=r.worker_host,
        worker_pid=r.worker_pid,
        started_at=r.started_at,
        ended_at=r.ended_at,
        outcome=outcome,
        detail=detail,
    )


def _trace(
    s: JobState,
    event: JobEvent,
    type_: str,
    *,
    stage: str | None = None,
    step: str | None = None,
    outcome: str | None = None,
    detail: dict[str, Any] | None = None,
) -> TraceEvent:
    return TraceEvent(
        job_id=s.job_id,
        type=type_,
        at=event.at,
        stage=stage,
        step_id=step,
        iteration=s.iteration,
        worker_host=event.worker_host,
        worker_pid=event.worker_pid,
        outcome=outcome,
        detail=detail or {},
    )


#: What follows a stage's result: one function per registered stage (the machine's edges).
#: ``(transition, the step that answered, its validated result, now, config)``.
ResultTransition = Callable[[Transition, PendingStep, Any, float, MachineConfig], None]
TRANSITIONS: Mapping[Stage, ResultTransition] = {
    "analysis": _after_analysis,
    "retrieval": _after_retrieval_shard,
    "generation": _after_generation,
    "evaluation": _after_evaluation,
}


__all__ = [
    "TRANSITIONS",
    "Command",
    "Dispatch",
    "Finish",
    "MachineConfig",
    "ResultTransition",
    "Transition",
    "Usage",
    "advance",
    "dispatch",
]

"""Replay a recorded job: recover its request from the trace, run it again, diff outcomes.

``recover_request`` and ``diff_results`` are pure; ``replay`` runs the request through the
embedded pipeline (the same task code, in-process) over the same data directory and store.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bus.errors import UsageError
from orchestrator.state import JobState
from schemas import Budget, JobRequest, JobResult, TraceEvent

NO_QUERY = (
    "the trace of job {job_id} does not record its query, and its state has expired; "
    "pass --query to replay it anyway"
)


def recover_request(
    job_id: str, trace: list[TraceEvent], state: JobState | None = None, *, query: str | None = None
) -> JobRequest:
    """The job's request: from its live state if still kept, else from the ``job.submitted``
    trace event (tenant, kind, budget, and the query, user and metadata when recorded).
    ``query`` overrides the recorded query. A new job: no idempotency key."""
    if state is not None:
        data = state.request.model_dump()
    else:
        submitted = next((e for e in trace if e.type == "job.submitted"), None)
        if submitted is None:
            raise UsageError(f"no trace for job {job_id} (unknown id, or expired)")
        d = submitted.detail
        data = {
            "query": d.get("query"),
            "tenant": d.get("tenant", "default"),
            "kind": d.get("kind", "question"),
            "user_id": d.get("user_id"),
            "budget": d.get("budget") or Budget().to_dict(),
            "metadata": d.get("metadata") or {},
        }
    if query is not None:
        data["query"] = query
    if not data.get("query"):
        raise UsageError(NO_QUERY.format(job_id=job_id))
    data["idempotency_key"] = None
    try:
        return JobRequest.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"the recorded request of job {job_id} is not valid: {exc}") from exc


def prompt_versions(trace: list[TraceEvent]) -> dict[str, str]:
    """Stage -> prompt version, as the trace records them (the last one per stage)."""
    out: dict[str, str] = {}
    for e in trace:
        version = e.detail.get("prompt_version") if e.type == "step.completed" else None
        if e.stage and version:
            out[e.stage] = str(version)
    return out


def recordings(trace: list[TraceEvent]) -> list[dict[str, Any]]:
    """What each language stage of the job was asked (fingerprint) and answered, as
    ``RAGRELAY_REPLAY_OUTPUTS`` expects: ``[{"stage", "step_id", "input_sha", "result"}]``."""
    return [
        {
            "stage": e.stage,
            "step_id": e.step_id,
            "input_sha": e.detail["input_sha"],
            "result": e.detail["result"],
        }
        for e in trace
        if e.type == "step.completed"
        and e.stage
        and "input_sha" in e.detail
        and isinstance(e.detail.get("result"), dict)
    ]


def reused_steps(trace: list[TraceEvent], recorded: list[dict[str, Any]]) -> list[str]:
    """Steps of a replay answered from a recording: same stage, input and prompt version,
    and no model call (a reused result's usage is zero)."""
    known = {(r["stage"], r["input_sha"], r["result"].get("prompt_version")) for r in recorded}
    out = []
    for e in trace:
        if e.type != "step.completed" or "input_sha" not in e.detail:
            continue
        calls = int((e.detail.get("usage") or {}).get("llm_calls", 0) or 0)
        if calls == 0 and (e.stage, e.detail["input_sha"], e.detail.get("prompt_version")) in known:
            out.append(str(e.step_id))
    return out


USAGE_FIELDS = frozenset({"llm_calls", "tokens", "cost_usd"})


@dataclass
class Diff:
    before: JobResult
    after: JobResult
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    answer_diff: list[str] = field(default_factory=list)
    citations_added: list[str] = field(default_factory=list)
    citations_removed: list[str] = field(default_factory=list)
    scores: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)  # replay steps answered from a recording

    @property
    def same(self) -> bool:
        """The same outcome; usage may differ (a replay that reuses recordings costs less)."""
        outcome = {k for k in self.fields if k not in USAGE_FIELDS}
        return not (
            outcome
            or self.answer_diff
            or self.citations_added
            or self.citations_removed
            or any(a != b for a, b in self.scores.values())
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "before_job_id": self.before.job_id,
            "after_job_id": self.after.job_id,
            "same": self.same,
            "changed": {k: {"before": a, "after": b} for k, (a, b) in self.fields.items()},
            "answer_diff": self.answer_diff,
            "citations_added": self.citations_added,
            "citations_removed": self.citations_removed,
            "scores": {k: {"before": a, "after": b} for k, (a, b) in self.scores.items()},
            "reused": self.reused,
        }


def diff_results(
    before: JobResult,
    after: JobResult,
    *,
    before_trace: list[TraceEvent] | None = None,
    after_trace: list[TraceEvent] | None = None,
) -> Diff:
    d = Diff(before=before, after=after)
    pairs: dict[str, tuple[Any, Any]] = {
        "status": (before.status, after.status),
        "stop_reason": (before.stop_reason, after.stop_reason),
        "iterations": (before.iterations, after.iterations),
        "triage": (before.triage, after.triage),
        "llm_calls": (before.usage.llm_calls, after.usage.llm_calls),
        "tokens": (before.usage.tokens, after.usage.tokens),
        "cost_usd": (before.usage.cost_usd, after.usage.cost_usd),
        "degraded": (len(before.degraded), len(after.degraded)),
        "prompt_versions": (
            prompt_versions(before_trace or before.trace),
            prompt_versions(after_trace or after.trace),
        ),
    }
    d.fields = {k: v for k, v in pairs.items() if v[0] != v[1]}
    if before.answer != after.answer:
        d.answer_diff = list(
            difflib.unified_diff(
                before.answer.splitlines(),
                after.answer.splitlines(),
                "before",
                "after",
                lineterm="",
            )
        )
    ids_before = [c.chunk_id for c in before.citations]
    ids_after = [c.chunk_id for c in after.citations]
    d.citations_added = [c for c in ids_after if c not in ids_before]
    d.citations_removed = [c for c in ids_before if c not in ids_after]
    for name in sorted(before.scores.keys() | after.scores.keys()):
        d.scores[name] = (before.scores.get(name), after.scores.get(name))
    return d


def render_diff(d: Diff) -> str:
    lines = [
        f"replayed {d.before.job_id} as {d.after.job_id}: "
        + ("same outcome" if d.same else "outcome changed")
    ]
    for key, (a, b) in d.fields.items():
        lines.append(f"  {key}: {a} -> {b}")
    if d.scores:
        lines.append("  scores:")
        for name, (a, b) in d.scores.items():
            delta = f" ({b - a:+.3f})" if a is not None and b is not None and a != b else ""
            fa = "—" if a is None else f"{a:.3f}"
            fb = "—" if b is None else f"{b:.3f}"
            lines.append(f"    {name}: {fa} -> {fb}{delta}")
    if d.citations_added or d.citations_removed:
        lines.append(f"  citations: +{d.citations_added} -{d.citations_removed}")
    if d.reused:
        lines.append(f"  reused recorded outputs (no model call): {', '.join(d.reused)}")
    if d.answer_diff:
        lines.append("  answer:")
        lines += [f"    {line}" for line in d.answer_diff]
    else:
        lines.append("  answer: unchanged")
    return "\n".join(lines)


__all__ = [
    "Diff",
    "diff_results",
    "prompt_versions",
    "recordings",
    "recover_request",
    "render_diff",
    "reused_steps",
]

"""A job's trace laid out as a timeline: bars per step on worker lanes, markers, iterations.

Pure: ``build_timeline(trace, result)`` turns TraceEvents (and the JobResult, when the job
has ended) into plain data the page renderer draws. No HTML here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas import JobResult, TraceEvent

ORCHESTRATOR_LANE = "orchestrator"


@dataclass(frozen=True)
class Bar:
    """One completed step: where it ran and when (epoch seconds)."""

    step_id: str
    stage: str
    iteration: int
    lane: str
    start: float
    end: float
    dispatched_at: float | None  # when the attempt that ran was sent (queue wait before start)
    attempt: int
    outcome: str
    tokens: int
    cost_usd: float
    llm_calls: int
    model: str | None
    prompt_version: str | None
    scores: dict[str, float]
    note: str  # a short description: hits, rewrites, citations, verdict

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000.0

    @property
    def wait_ms(self) -> float | None:
        if self.dispatched_at is None:
            return None
        return max(0.0, (self.start - self.dispatched_at) * 1000.0)


@dataclass(frozen=True)
class Marker:
    """Something that happened at an instant: a failure, a timeout, a re-send, a guardrail."""

    kind: str  # failed | timeout | resent | guardrail | finished
    at: float
    lane: str
    label: str
    step_id: str | None = None
    stage: str | None = None


@dataclass(frozen=True)
class IterationSpan:
    number: int
    start: float
    end: float
    verdict: str | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def mean_score(self) -> float | None:
        return sum(self.scores.values()) / len(self.scores) if self.scores else None


@dataclass(frozen=True)
class Timeline:
    job_id: str
    t0: float
    t1: float
    lanes: list[str]
    bars: list[Bar]
    markers: list[Marker]
    iterations: list[IterationSpan]
    status: str
    stop_reason: str | None
    tenant: str | None
    kind: str | None
    budget: dict[str, Any]
    usage: dict[str, Any]
    question: str | None = None  # the job's query, from its job.submitted event
    # lane -> what a person reads: the stage(s) it ran and its process ("generation · pid 26130")
    lane_labels: dict[str, str] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        return (self.t1 - self.t0) * 1000.0

    def lane_label(self, lane: str) -> str:
        return self.lane_labels.get(lane, lane)


def lane_of(event: TraceEvent) -> str:
    if event.worker_host or event.worker_pid:
        return f"{event.worker_host or '?'}:{event.worker_pid or 0}"
    return ORCHESTRATOR_LANE


def lane_labels(lanes: list[str], bars: list[Bar], markers: list[Marker]) -> dict[str, str]:
    """Each lane named by the stages it ran and its process: ``generation · pid 26130``
    (``vm pid 26130`` when the trace spans several hosts; ``all stages`` for an embedded
    process that ran every stage)."""
    stages: dict[str, list[str]] = {lane: [] for lane in lanes}
    ran: list[tuple[str, str | None]] = [(b.lane, b.stage) for b in bars]
    for lane, stage in ran + [(m.lane, m.stage) for m in markers]:
        if stage and lane in stages and stage not in stages[lane]:
            stages[lane].append(stage)
    hosts = {lane.rpartition(":")[0] for lane in lanes if lane != ORCHESTRATOR_LANE}
    out: dict[str, str] = {}
    for lane in lanes:
        if lane == ORCHESTRATOR_LANE:
            out[lane] = ORCHESTRATOR_LANE
            continue
        host, _, pid = lane.rpartition(":")
        process = f"{host} pid {pid}" if len(hosts) > 1 else f"pid {pid}"
        seen = stages[lane]
        what = "all stages" if len(seen) >= 4 else ", ".join(seen) or "worker"
        out[lane] = f"{what} · {process}"
    return out


def _usage_numbers(detail: dict[str, Any]) -> tuple[int, float, int]:
    usage = detail.get("usage") or {}
    tokens = sum(
        int(usage.get(f"{k}_tokens", 0) or 0)
        for k in ("input", "output", "cache_read", "cache_write")
    )
    return tokens, float(usage.get("cost_usd", 0.0) or 0.0), int(usage.get("llm_calls", 0) or 0)


def _note(stage: str, outcome: str, detail: dict[str, Any]) -> str:
    if stage == "retrieval":
        return f"{detail.get('source', '?')}: {detail.get('hits', 0)} hits"
    if stage == "analysis":
        rewrites = detail.get("rewrites") or []
        return f"{len(rewrites)} rewrite(s)" + (
            f", triage {detail['triage']}" if detail.get("triage") else ""
        )
    if stage == "generation":
        return f"{len(detail.get('citations') or [])} citation(s)"
    if stage == "evaluation":
        return f"verdict {outcome}"
    return outcome


def _iteration_of(event: TraceEvent) -> int:
    if event.iteration is not None:
        return event.iteration
    parts = (event.step_id or "").split("/")
    return int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else 1


def build_timeline(trace: list[TraceEvent], result: JobResult | None = None) -> Timeline:
    """Lay out ``trace`` (in stream order). ``result`` supplies status and usage when final."""
    events = list(trace)
    job_id = result.job_id if result else (events[0].job_id if events else "")
    dispatched: dict[tuple[str, int], float] = {}
    last_attempt: dict[str, int] = {}
    bars: list[Bar] = []
    markers: list[Marker] = []
    lanes: list[str] = []
    submitted: dict[str, Any] = {}
    finished: TraceEvent | None = None

    def add_lane(name: str) -> None:
        if name not in lanes:
            lanes.append(name)

    for e in events:
        sid = e.step_id or ""
        if e.type == "job.submitted":
            submitted = dict(e.detail)
        elif e.type == "step.dispatched":
            attempt = int(e.detail.get("attempt", 1) or 1)
            dispatched[(sid, attempt)] = e.at
            last_attempt[sid] = attempt
            if attempt > 1:
                add_lane(ORCHESTRATOR_LANE)
                markers.append(
                    Marker(
                        "resent",
                        e.at,
                        ORCHESTRATOR_LANE,
                        f"{e.stage} re-sent, attempt {attempt}",
                        sid,
                        e.stage,
                    )
                )
        elif e.type == "step.completed":
            lane = lane_of(e)
            add_lane(lane)
            attempt = last_attempt.get(sid, 1)
            start = e.started_at if e.started_at is not None else e.at
            end = e.ended_at if e.ended_at is not None else start
            tokens, cost, calls = _usage_numbers(e.detail)
            scores = {str(k): float(v) for k, v in (e.detail.get("scores") or {}).items()}
            stage = e.stage or "?"
            bars.append(
                Bar(
                    step_id=sid,
                    stage=stage,
                    iteration=_iteration_of(e),
                    lane=lane,
                    start=start,
                    end=max(end, start),
                    dispatched_at=dispatched.get((sid, attempt)),
                    attempt=attempt,
                    outcome=e.outcome or "ok",
                    tokens=tokens,
                    cost_usd=cost,
                    llm_calls=calls,
                    model=e.detail.get("model"),
                    prompt_version=e.detail.get("prompt_version"),
                    scores=scores,
                    note=_note(stage, e.outcome or "ok", e.detail),
                )
            )
        elif e.type in ("step.failed", "step.timeout"):
            lane = lane_of(e)
            add_lane(lane)
            kind = "failed" if e.type == "step.failed" else "timeout"
            reason = str(e.detail.get("error") or f"attempt {e.detail.get('attempt', '?')}")
            markers.append(
                Marker(kind, e.at, lane, f"{e.stage} {kind}: {reason}"[:300], sid or None, e.stage)
            )
        elif e.type.startswith("guardrail."):
            add_lane(ORCHESTRATOR_LANE)
            markers.append(
                Marker(
                    "guardrail",
                    e.at,
                    ORCHESTRATOR_LANE,
                    f"{e.type.partition('.')[2]}: {e.detail}"[:300],
                    sid or None,
                    e.stage,
                )
            )
        elif e.type == "job.finished":
            finished = e

    times = [e.at for e in events] + [b.start for b in bars] + [b.end for b in bars]
    t0 = min(times) if times else 0.0
    t1 = max(times) if times else 0.0
    iterations = _iterations(events, bars)
    status = result.status if result else (finished.outcome if finished else "running")
    stop_reason = (
        result.stop_reason
        if result
        else (str(finished.detail.get("stop_reason")) if finished else None)
    )
    usage = (
        result.usage.to_dict()
        if result
        else dict((finished.detail.get("usage") if finished else None) or {})
    )
    bars.sort(key=lambda b: (b.start, b.step_id))
    return Timeline(
        job_id=job_id,
        t0=t0,
        t1=max(t1, t0),
        lanes=lanes,
        bars=bars,
        markers=markers,
        iterations=iterations,
        status=status or "unknown",
        stop_reason=stop_reason,
        tenant=result.tenant if result else submitted.get("tenant"),
        kind=result.kind if result else submitted.get("kind"),
        budget=dict(submitted.get("budget") or {}),
        usage=usage,
        question=str(submitted["query"]) if submitted.get("query") else None,
        lane_labels=lane_labels(lanes, bars, markers),
    )


def _iterations(events: list[TraceEvent], bars: list[Bar]) -> list[IterationSpan]:
    spans: dict[int, list[float]] = {}
    for e in events:
        if e.type in ("step.dispatched", "step.failed", "step.timeout") and e.step_id:
            spans.setdefault(_iteration_of(e), []).append(e.at)
    for b in bars:
        spans.setdefault(b.iteration, []).extend((b.start, b.end))
    out: list[IterationSpan] = []
    for number in sorted(spans):
        evals = [b for b in bars if b.iteration == number and b.stage == "evaluation"]
        last = evals[-1] if evals else None
        out.append(
            IterationSpan(
                number,
                min(spans[number]),
                max(spans[number]),
                verdict=last.outcome if last else None,
                scores=dict(last.scores) if last else {},
            )
        )
    return out


__all__ = [
    "Bar",
    "IterationSpan",
    "Marker",
    "Timeline",
    "build_timeline",
    "lane_labels",
    "lane_of",
]

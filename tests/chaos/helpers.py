"""Submitting jobs and closing a scenario with its ledger."""

from __future__ import annotations

import time

import redis

from bus.keys import Keys
from orchestrator.jobs import JobStore
from schemas import Budget, JobRequest
from tests.chaos.record import FAST_ENV, MAX_TTL_S, ScenarioRecord
from tests.support.ledger import LedgerReport, collect, wait_all_final

QUESTIONS = (
    "How are transient errors retried?",
    "What does the sweeper do with budgets?",
    "How are results carried back to the orchestrator?",
    "What is at-least-once delivery with idempotency?",
    "How does fan-out and fusion work?",
    "When does the evaluation loop revise an answer?",
    "How does ragrelay scale out on Kubernetes?",
    "What is in a trace?",
)


def submit(client: redis.Redis, n: int, *, tag: str = "job", **budget: float) -> list[str]:
    """Submit ``n`` jobs (idempotency keys ``tag-i``); returns their ids in order."""
    jobs = JobStore(client, Keys(), ttl_s=int(FAST_ENV["RAGRELAY_RESULT_TTL_S"]))
    ids = []
    for i in range(n):
        request = JobRequest(
            query=QUESTIONS[i % len(QUESTIONS)],
            tenant="demo",
            idempotency_key=f"{tag}-{i}",
            budget=Budget(**budget),
        )
        ids.append(jobs.submit(request)[0])
    return ids


def close(
    client: redis.Redis, record: ScenarioRecord, job_ids: list[str], *, timeout_s: float
) -> LedgerReport:
    """Wait for every job, then check and record the ledger. Fails the test on any problem."""
    started = time.monotonic()
    missing = wait_all_final(client, job_ids, timeout_s=timeout_s)
    record.figures["wait_s"] = round(time.monotonic() - started, 1)
    report = collect(client, job_ids, max_ttl_s=MAX_TTL_S)
    record.add_ledger(report)
    assert not missing, f"{len(missing)} jobs without a final result: {missing[:5]}"
    assert report.ok, report.problems()
    return report


def wait_for(predicate: object, timeout_s: float, what: str, interval_s: float = 0.05) -> float:
    """Poll ``predicate()`` until true; returns the seconds it took."""
    started = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
    return time.monotonic() - started


def unacked_for(client: redis.Redis, queue: str) -> int:
    """How many messages of ``queue`` are delivered to a worker but not acknowledged."""
    import json

    n = 0
    for raw in client.hvals("unacked"):
        _message, _exchange, routing_key = json.loads(raw)
        n += routing_key == queue
    return n


def steps(client: redis.Redis, job_id: str, type_: str, stage: str | None = None) -> int:
    trace = JobStore(client, Keys()).trace(job_id)
    return sum(1 for _, e in trace if e.type == type_ and (stage is None or e.stage == stage))

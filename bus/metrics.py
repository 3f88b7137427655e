"""Prometheus metrics: one module, imported by the task base, the engine and the gateway.

Prefork workers run in multiprocess mode: the entry point sets ``PROMETHEUS_MULTIPROC_DIR``
before this module is imported (see ``ragrelay/cli/run.py``) and ``serve_metrics``
aggregates every child's values.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

STAGE_SECONDS = Histogram(
    "ragrelay_stage_seconds",
    "Time a stage task took, by stage and outcome.",
    ["stage", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
TASKS = Counter(
    "ragrelay_tasks_total",
    "Stage tasks by outcome: ok, retry, dead_letter, invalid, duplicate.",
    ["stage", "outcome"],
)
DEAD_LETTERS = Counter(
    "ragrelay_dead_letters_total", "Messages dead-lettered, by stage and kind.", ["stage", "kind"]
)
JOBS_FINISHED = Counter(
    "ragrelay_jobs_finished_total",
    "Jobs finished, by tenant, status and stop reason.",
    ["tenant", "status", "stop_reason"],
)
JOB_ITERATIONS = Histogram(
    "ragrelay_job_iterations",
    "Evaluate→rewrite iterations per finished job.",
    buckets=(1, 2, 3, 4, 5, 8, 13, 20),
)
JOB_SECONDS = Histogram(
    "ragrelay_job_seconds",
    "Submission to final result.",
    ["tenant"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "ragrelay_tokens_total",
    "LLM tokens, by model, tenant and kind (input, output, cache_read, cache_write).",
    ["model", "tenant", "kind"],
)
COST_USD = Counter("ragrelay_cost_usd_total", "LLM cost in USD.", ["model", "tenant"])
EVAL_SCORE = Histogram(
    "ragrelay_eval_score",
    "Evaluation scores (0 to 1), by metric.",
    ["metric"],
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
)
QUEUE_DEPTH = Gauge(
    "ragrelay_queue_depth",
    "Messages waiting in a queue (the Redis list length).",
    ["queue"],
    multiprocess_mode="livemax",
)
EVENTS_APPLIED = Counter(
    "ragrelay_events_applied_total", "Events that changed a job, by type.", ["type"]
)
JOBS_QUARANTINED = Counter(
    "ragrelay_jobs_quarantined_total",
    "Jobs ended because their stored state could not be loaded or applied.",
)


def serve_metrics(port: int, addr: str = "0.0.0.0") -> None:
    """Expose /metrics on ``port``; aggregates prefork children in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=addr, registry=registry)
    else:
        start_http_server(port, addr=addr)

"""Measurements: the ragrelay pipeline and the raw-chain baseline, each on its own fleet."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from bus.keys import STAGE_QUEUES, Keys
from orchestrator.bench.driver import Completions, Outcome, closed_loop
from orchestrator.bench.procs import Fleet, RssSampler
from orchestrator.bench.rawchain import RAW_STAGES, create_raw_app, send_chain
from orchestrator.bench.run import BenchRun
from orchestrator.bench.stats import summarise
from orchestrator.jobs import JobStore
from schemas import Budget, JobRequest

QUERY = "How do I rotate the signing key without downtime?"
BENCH_TENANT = "bench"


class BenchError(RuntimeError):
    """A measurement could not complete (a process died, jobs did not finish)."""


@dataclass(frozen=True)
class StageSpec:
    """How one stage's processes run: ``noop`` (zero-cost, optional sleep) or ``real``."""

    mode: str = "noop"
    processes: int = 1
    pool: str = "threads"
    concurrency: int = 4
    sleep_ms: float = 0.0

    def args(self, stage: str) -> list[str]:
        if self.mode == "real":
            return ["-m", "orchestrator", "worker", stage, "--pool", self.pool,
                    "-c", str(self.concurrency)]
        return ["-m", "orchestrator.bench.worker", "noop", stage, "--pool", self.pool,
                "-c", str(self.concurrency), "--sleep-ms", str(self.sleep_ms)]


@dataclass
class Measured:
    outcome: Outcome
    rss_mb: dict[str, Any] = field(default_factory=dict)
    cpu_ms_per_job: dict[str, float] = field(default_factory=dict)

    def line(self, **extra: Any) -> dict[str, Any]:
        out = summarise(self.outcome.latencies_s, self.outcome.elapsed_s)
        out.update(extra)
        out["statuses"] = dict(self.outcome.statuses)
        out["rss_peak_mb"] = self.rss_mb
        out["cpu_ms_per_job"] = self.cpu_ms_per_job
        if self.outcome.timed_out:
            out["timed_out"] = True
        return out


def _drive(run: BenchRun, fleet: Fleet, prefix: str, submit: Callable[[str], None], *,
           jobs: int, warmup: int, inflight: int, timeout_s: float) -> Measured:
    client = redis.Redis.from_url(run.redis_url)
    completions = Completions(client, prefix)
    try:
        with RssSampler(fleet) as rss:
            if warmup:
                warm = closed_loop(completions, submit, [f"{prefix}w{i}" for i in range(warmup)],
                                   inflight=inflight, timeout_s=timeout_s,
                                   on_tick=fleet.check_alive)
                if warm.timed_out:
                    fleet.check_alive()
                    raise BenchError(f"warm-up: {len(warm.latencies_s)}/{warmup} jobs finished "
                                     f"in {timeout_s:g} s; logs in {fleet.logdir}")
            rss.sample()
            before = rss.cpu_by_kind()
            redis_before = _redis_cpu_s(client)
            here = time.process_time()
            outcome = closed_loop(completions, submit, [f"{prefix}m{i}" for i in range(jobs)],
                                  inflight=inflight, timeout_s=timeout_s,
                                  on_tick=fleet.check_alive)
            rss.sample()
            here = time.process_time() - here
            redis_cpu = _redis_cpu_s(client) - redis_before
        after = rss.cpu_by_kind()
        n = max(1, len(outcome.latencies_s))
        cpu = {k: round((after[k] - before.get(k, 0.0)) * 1000 / n, 2) for k in sorted(after)}
        cpu["bench_client"] = round(here * 1000 / n, 2)
        cpu["redis"] = round(redis_cpu * 1000 / n, 2)
        return Measured(outcome, rss.report(), cpu)
    finally:
        completions.close()
        client.close()


def measure_raw_chain(run: BenchRun, *, jobs: int, warmup: int, inflight: int, pool: str,
                      concurrency: int, timeout_s: float) -> Measured:
    fleet = Fleet(run.child_env(), run.logdir("raw"))
    app = create_raw_app(run.redis_url, store_results=False)
    payload = _request().to_dict()
    try:
        for stage in RAW_STAGES:
            fleet.start(stage, ["-m", "orchestrator.bench.worker", "raw", stage, "--pool", pool,
                                "-c", str(concurrency)])
        return _drive(run, fleet, f"{run.run_id}-c",
                      lambda task_id: send_chain(app, payload, task_id),
                      jobs=jobs, warmup=warmup, inflight=inflight, timeout_s=timeout_s)
    finally:
        fleet.stop()
        app.close()


def measure_pipeline(run: BenchRun, stages: Mapping[str, StageSpec], *, jobs: int, warmup: int,
                     inflight: int, timeout_s: float, extra_env: Mapping[str, str] | None = None,
                     tag: str = "p") -> Measured:
    fleet = Fleet(run.child_env(**dict(extra_env or {})), run.logdir(f"pipeline-{tag}"))
    client = redis.Redis.from_url(run.redis_url)
    store = JobStore(client, Keys(run.key_prefix), ttl_s=3600)
    request = _request()

    def submit(job_id: str) -> None:
        store.submit(request, job_id=job_id, reply_task_id=job_id)

    try:
        fleet.start("orchestrator", ["-m", "orchestrator", "orchestrator", "-c", "1"])
        for stage in STAGE_QUEUES:
            spec = stages[stage]
            for _ in range(spec.processes):
                fleet.start(stage, spec.args(stage))
        return _drive(run, fleet, f"{run.run_id}-{tag}", submit, jobs=jobs, warmup=warmup,
                      inflight=inflight, timeout_s=timeout_s)
    finally:
        fleet.stop()
        client.close()


def _redis_cpu_s(client: redis.Redis) -> float:
    info: Any = client.info("cpu")
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


def _request() -> JobRequest:
    return JobRequest(query=QUERY, tenant=BENCH_TENANT, budget=Budget(max_iterations=1))


def emit(line: Mapping[str, Any], as_json: bool) -> None:
    import json

    if as_json:
        sys.stdout.write(json.dumps(line, sort_keys=False) + "\n")
    else:
        parts = [f"{k}={v}" for k, v in line.items()]
        sys.stdout.write("  ".join(parts) + "\n")
    sys.stdout.flush()

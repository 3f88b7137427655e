"""Measurements: the ragrelay pipeline and the raw-chain baseline, each on its own fleet."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from bus.keys import STAGE_QUEUES, Keys
from bus.redis import client_for_url
from orchestrator.jobs import JobStore
from ragrelay.bench.driver import Completions, Outcome, closed_loop
from ragrelay.bench.procs import Fleet, RssSampler
from ragrelay.bench.rawchain import RAW_STAGES, create_raw_app, send_chain
from ragrelay.bench.redisstats import RedisCounters, snapshot
from ragrelay.bench.run import BenchRun
from ragrelay.bench.stats import summarise
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
            return [
                "-m",
                "ragrelay",
                "worker",
                stage,
                "--pool",
                self.pool,
                "-c",
                str(self.concurrency),
            ]
        return [
            "-m",
            "ragrelay.bench.worker",
            "noop",
            stage,
            "--pool",
            self.pool,
            "-c",
            str(self.concurrency),
            "--sleep-ms",
            str(self.sleep_ms),
        ]


@dataclass
class Measured:
    outcome: Outcome
    rss_mb: dict[str, Any] = field(default_factory=dict)
    cpu_ms_per_job: dict[str, float] = field(default_factory=dict)
    redis: RedisCounters = field(default_factory=RedisCounters)

    def line(self, **extra: Any) -> dict[str, Any]:
        out = summarise(self.outcome.latencies_s, self.outcome.elapsed_s)
        out.update(extra)
        out.update(self.redis.per_job(len(self.outcome.latencies_s)))
        out["statuses"] = dict(self.outcome.statuses)
        out["rss_peak_mb"] = self.rss_mb
        out["cpu_ms_per_job"] = self.cpu_ms_per_job
        # the system under test: every process but the harness (whose sampling threads
        # cost CPU per second, not per job)
        total = round(sum(v for k, v in self.cpu_ms_per_job.items() if k != "bench_client"), 2)
        out["cpu_ms_per_job_total"] = total
        # what these processes could finish if they had every core to themselves
        cores = os.cpu_count() or 1
        out["cpu_bound_jobs_per_s"] = round(cores * 1000 / total, 1) if total > 0 else 0.0
        if self.outcome.timed_out:
            out["timed_out"] = True
        return out


class Side:
    """One started system under test: its fleet, its submit function, what it measured.

    Sides stay up together so that measurements can alternate in slices: on a shared,
    noisy machine both then see the same background load.
    """

    def __init__(
        self, name: str, run: BenchRun, fleet: Fleet, prefix: str, submit: Callable[[str], None]
    ) -> None:
        self.name = name
        self.fleet = fleet
        self.prefix = prefix
        self.submit = submit
        self.round = -1  # ids stay unique across rounds (a reused task id is not re-timed)
        self.client = client_for_url(run.redis_url)
        self.completions = Completions(self.client, prefix)
        self.rss = RssSampler(fleet).__enter__()
        self.reset()

    def reset(self) -> None:
        """Forget what was measured (the fleet stays up): for a new comparison."""
        self.round += 1
        self.outcome = Outcome()
        self.cpu_s: dict[str, float] = {}
        self.redis = RedisCounters()
        self.slices = 0

    def warm(self, n: int, *, inflight: int, timeout_s: float) -> None:
        if n <= 0:
            return
        warm = closed_loop(
            self.completions,
            self.submit,
            [f"{self.prefix}w{self.round}-{i}" for i in range(n)],
            inflight=inflight,
            timeout_s=timeout_s,
            on_tick=self.fleet.check_alive,
        )
        if warm.timed_out:
            self.fleet.check_alive()
            raise BenchError(
                f"{self.name} warm-up: {len(warm.latencies_s)}/{n} jobs finished "
                f"in {timeout_s:g} s; logs in {self.fleet.logdir}"
            )

    def measure(self, n: int, *, inflight: int, timeout_s: float) -> None:
        """Run ``n`` jobs and add them (and the CPU they cost) to this side's totals."""
        self.rss.sample()
        before = self.rss.cpu_by_kind()
        redis_before = _redis_cpu_s(self.client)
        counters_before = snapshot(self.client)
        here = time.process_time()
        ids = [f"{self.prefix}m{self.round}-{self.slices}-{i}" for i in range(n)]
        got = closed_loop(
            self.completions,
            self.submit,
            ids,
            inflight=inflight,
            timeout_s=timeout_s,
            on_tick=self.fleet.check_alive,
        )
        self.redis = self.redis + (snapshot(self.client) - counters_before)
        self.rss.sample()
        spent = {
            "bench_client": time.process_time() - here,
            "redis": _redis_cpu_s(self.client) - redis_before,
        }
        for kind, seconds in self.rss.cpu_by_kind().items():
            spent[kind] = seconds - before.get(kind, 0.0)
        for kind, seconds in spent.items():
            self.cpu_s[kind] = self.cpu_s.get(kind, 0.0) + seconds
        self.slices += 1
        out = self.outcome
        out.submitted += got.submitted
        out.latencies_s += got.latencies_s
        out.statuses.update(got.statuses)
        out.llm_calls.update(got.llm_calls)
        out.elapsed_s += got.elapsed_s
        out.timed_out = out.timed_out or got.timed_out
        if got.timed_out:
            raise BenchError(
                f"{self.name}: {len(got.latencies_s)}/{n} jobs finished in "
                f"{timeout_s:g} s; logs in {self.fleet.logdir}"
            )

    def result(self) -> Measured:
        n = max(1, len(self.outcome.latencies_s))
        cpu = {k: round(v * 1000 / n, 2) for k, v in sorted(self.cpu_s.items())}
        return Measured(self.outcome, self.rss.report(), cpu, self.redis)

    def close(self) -> None:
        self.rss.__exit__(None, None, None)
        self.completions.close()
        self.client.close()
        self.fleet.stop()


def alternate(
    sides: list[Side], *, jobs: int, slices: int, warmup: int, inflight: int, timeout_s: float
) -> list[Measured]:
    """Warm every side, then run ``jobs`` on each in ``slices`` alternating slices."""
    for side in sides:
        side.warm(warmup, inflight=inflight, timeout_s=timeout_s)
    slices = max(1, min(slices, jobs))
    sizes = [jobs // slices + (1 if i < jobs % slices else 0) for i in range(slices)]
    for size in sizes:
        for side in sides:
            side.measure(size, inflight=inflight, timeout_s=timeout_s)
    return [side.result() for side in sides]


@contextlib.contextmanager
def raw_chain_side(run: BenchRun, *, pool: str, concurrency: int) -> Iterator[Side]:
    fleet = Fleet(run.child_env(), run.logdir("raw"))
    app = create_raw_app(run.redis_url, store_results=False)
    payload = _request().to_dict()
    side: Side | None = None
    try:
        for stage in RAW_STAGES:
            fleet.start(
                stage,
                [
                    "-m",
                    "ragrelay.bench.worker",
                    "raw",
                    stage,
                    "--pool",
                    pool,
                    "-c",
                    str(concurrency),
                ],
            )
        side = Side(
            "raw chain",
            run,
            fleet,
            f"{run.run_id}-c",
            lambda task_id: send_chain(app, payload, task_id),
        )
        yield side
    finally:
        if side is not None:
            side.close()
        fleet.stop()
        app.close()


@contextlib.contextmanager
def pipeline_side(
    run: BenchRun,
    stages: Mapping[str, StageSpec],
    *,
    extra_env: Mapping[str, str] | None = None,
    tag: str = "p",
    orchestrators: int = 1,
) -> Iterator[Side]:
    """The pipeline's fleet: ``orchestrators`` replicas sharing the consumer group, and
    the stage workers of ``stages``."""
    fleet = Fleet(run.child_env(**dict(extra_env or {})), run.logdir(f"pipeline-{tag}"))
    client = client_for_url(run.redis_url)
    store = JobStore(client, Keys(run.key_prefix), ttl_s=3600)
    request = _request()

    def submit(job_id: str) -> None:
        store.submit(request, job_id=job_id, reply_task_id=job_id)

    side: Side | None = None
    try:
        for _ in range(orchestrators):  # one consumer group: they share the event stream
            fleet.start("orchestrator", ["-m", "ragrelay", "orchestrator", "-c", "1"])
        for stage in STAGE_QUEUES:
            spec = stages[stage]
            for _ in range(spec.processes):
                fleet.start(stage, spec.args(stage))
        side = Side("pipeline", run, fleet, f"{run.run_id}-{tag}", submit)
        yield side
    finally:
        if side is not None:
            side.close()
        fleet.stop()
        client.close()


def measure_pipeline(
    run: BenchRun,
    stages: Mapping[str, StageSpec],
    *,
    jobs: int,
    warmup: int,
    inflight: int,
    timeout_s: float,
    extra_env: Mapping[str, str] | None = None,
    tag: str = "p",
    orchestrators: int = 1,
) -> Measured:
    """The pipeline alone, in one slice."""
    with pipeline_side(
        run, stages, extra_env=extra_env, tag=tag, orchestrators=orchestrators
    ) as side:
        (measured,) = alternate(
            [side], jobs=jobs, slices=1, warmup=warmup, inflight=inflight, timeout_s=timeout_s
        )
        return measured


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

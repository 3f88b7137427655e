"""The I/O-bound run: LLM stages that each wait ``delay`` per call, many jobs in flight.

With ``in-flight`` jobs kept in flight and each job needing ``calls * delay`` of waiting at
least, Little's law bounds throughput by ``in-flight / (calls * delay)``; ``efficiency`` is
the achieved jobs/s over that bound. The delay comes from the loopback Anthropic-compatible
server (``tests.fakes.anthropic_server``, through the real SDK and the real stage handlers),
or, where that is not available, from zero-cost stages that sleep the delay (``sleep-fault``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bus.keys import STAGE_QUEUES
from ragrelay.bench.measure import (
    QUERY,
    BenchError,
    Measured,
    Side,
    StageSpec,
    measure_pipeline,
)
from ragrelay.bench.procs import Fleet, free_port, stop_process
from ragrelay.bench.rawllm import RAW_LLM_STAGES, create_raw_llm_app, send_llm_chain
from ragrelay.bench.run import BenchRun, project_root
from ragrelay.bench.stats import littles_bound, ratio
from schemas import STAGE_SPECS

LLM_STAGES = tuple(name for name, spec in STAGE_SPECS.items() if spec.calls_llm)  # in order
FAKE_SERVER = "tests.fakes.anthropic_server"


@dataclass(frozen=True)
class LatencyPlan:
    delay_ms: float
    inflight: int
    jobs: int
    counts: Mapping[str, int]
    concurrency: int
    timeout_s: float
    pool: str = "threads"
    orchestrators: int = 1

    @property
    def rounded_jobs(self) -> int:
        """Whole waves of ``inflight`` jobs, so a half-empty last wave does not skew it."""
        waves = max(1, -(-self.jobs // self.inflight))
        return waves * self.inflight


def fake_server_available() -> bool:
    return (project_root() / "tests" / "fakes" / "anthropic_server.py").is_file()


@contextlib.contextmanager
def fake_anthropic(run: BenchRun, delay_ms: float) -> Iterator[str]:
    """The loopback Messages API as its own process; yields its base URL."""
    port = free_port()
    root = str(project_root())
    env = run.child_env(PYTHONPATH=root)
    log = (run.workdir / "fake-anthropic.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", FAKE_SERVER, "--port", str(port), "--delay-ms", str(delay_ms)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise BenchError(
                    f"the loopback Anthropic server exited ({proc.returncode}); "
                    f"see {run.workdir / 'fake-anthropic.log'}"
                )
            try:
                urllib.request.urlopen(f"{url}/v1/models", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("the loopback Anthropic server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        stop_process(proc)
        log.close()


def stage_specs(
    llm: str,
    plan: LatencyPlan,
    counts: Mapping[str, int] | None = None,
    concurrency: int | None = None,
) -> dict[str, StageSpec]:
    counts = counts or plan.counts
    conc = concurrency or plan.concurrency
    specs: dict[str, StageSpec] = {}
    for stage in STAGE_QUEUES:
        if stage not in LLM_STAGES:
            specs[stage] = StageSpec("noop", counts[stage], "threads", conc)
        elif llm == "anthropic":
            specs[stage] = StageSpec("real", counts[stage], plan.pool, conc)
        else:
            specs[stage] = StageSpec("noop", counts[stage], plan.pool, conc, plan.delay_ms)
    return specs


def anthropic_env(url: str) -> dict[str, str]:
    return {
        "RAGRELAY_ANTHROPIC_API_KEY": "bench-loopback-key",
        "RAGRELAY_ANTHROPIC_BASE_URL": url,
        "RAGRELAY_ANTHROPIC_MAX_RETRIES": "0",
    }


def measure(
    run: BenchRun,
    plan: LatencyPlan,
    llm: str,
    *,
    url: str | None = None,
    counts: Mapping[str, int] | None = None,
    concurrency: int | None = None,
    jobs: int | None = None,
    warmup: int | None = None,
    tag: str = "l",
) -> Measured:
    env = anthropic_env(url) if llm == "anthropic" and url else {}
    return measure_pipeline(
        run,
        stage_specs(llm, plan, counts, concurrency),
        jobs=jobs or plan.rounded_jobs,
        warmup=min(plan.inflight, 20) if warmup is None else warmup,
        inflight=plan.inflight,
        timeout_s=plan.timeout_s,
        extra_env=env,
        tag=tag,
        orchestrators=plan.orchestrators,
    )


def latency_line(
    m: Measured, plan: LatencyPlan, llm: str, *, measurement: str = "latency", **extra: Any
) -> dict[str, Any]:
    calls = _typical_calls(m, llm)
    ideal_s = calls * plan.delay_ms / 1000.0
    line = m.line(
        measurement=measurement,
        llm=llm,
        llm_delay_ms=plan.delay_ms,
        inflight=plan.inflight,
        llm_calls_per_job=calls,
        **extra,
    )
    bound = littles_bound(plan.inflight, ideal_s)
    line["per_job_latency_s"] = round(ideal_s, 3)
    line["littles_bound_jobs_per_s"] = round(bound, 1)
    line["efficiency"] = ratio(line["jobs_per_s"], bound)
    return line


def _typical_calls(m: Measured, llm: str) -> int:
    if llm != "anthropic":
        return len(LLM_STAGES)  # each LLM stage sleeps the delay once
    if not m.outcome.llm_calls:
        return 0
    return max(m.outcome.llm_calls.items(), key=lambda kv: kv[1])[0]


def check_anthropic(m: Measured) -> None:
    if _typical_calls(m, "anthropic") == 0:
        raise BenchError(
            "the workers made no LLM calls: the Anthropic provider is not selected by "
            "RAGRELAY_ANTHROPIC_API_KEY in this build; use --llm sleep-fault"
        )


@contextlib.contextmanager
def raw_llm_chain_side(run: BenchRun, url: str, *, pool: str, concurrency: int) -> Iterator[Side]:
    """The hand-written three-task chain, each task one SDK call to the same server."""
    fleet = Fleet(run.child_env(**anthropic_env(url)), run.logdir("rawllm"))
    app = create_raw_llm_app(run.redis_url, store_results=False)
    side: Side | None = None
    try:
        for stage in RAW_LLM_STAGES:
            fleet.start(
                stage,
                [
                    "-m",
                    "ragrelay.bench.worker",
                    "rawllm",
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
            f"{run.run_id}-r",
            lambda task_id: send_llm_chain(app, QUERY, task_id),
        )
        yield side
    finally:
        if side is not None:
            side.close()
        fleet.stop()
        app.close()


def raw_chain_line(
    m: Measured, plan: LatencyPlan, *, pool: str, concurrency: int
) -> dict[str, Any]:
    """The baseline's line: same keys as the pipeline's (``efficiency`` against the same bound)."""
    line = latency_line(
        m,
        plan,
        "anthropic",
        measurement="raw_chain",
        tasks_per_job=len(RAW_LLM_STAGES),
        result_backend="redis",
        pool=pool,
        concurrency=concurrency,
    )
    return line


def comparison(pipe: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """The same-run ratios: above 1 the pipeline is faster (jobs/s) or costlier (CPU)."""
    return {
        "measurement": "latency_vs_raw_chain",
        "jobs_per_s_ratio": ratio(pipe["jobs_per_s"], raw["jobs_per_s"]),
        "pipeline_jobs_per_s": pipe["jobs_per_s"],
        "raw_chain_jobs_per_s": raw["jobs_per_s"],
        "pipeline_efficiency": pipe["efficiency"],
        "raw_chain_efficiency": raw["efficiency"],
        "pipeline_p50_ms": pipe["p50_ms"],
        "raw_chain_p50_ms": raw["p50_ms"],
        "pipeline_p99_ms": pipe["p99_ms"],
        "raw_chain_p99_ms": raw["p99_ms"],
        "pipeline_cpu_ms_per_job": pipe["cpu_ms_per_job_total"],
        "raw_chain_cpu_ms_per_job": raw["cpu_ms_per_job_total"],
        "cpu_ms_per_job_ratio": ratio(pipe["cpu_ms_per_job_total"], raw["cpu_ms_per_job_total"]),
        "machine": pipe.get("machine"),
    }

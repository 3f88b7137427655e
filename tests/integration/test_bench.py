"""`ragrelay bench overhead` and `ragrelay bench latency`, tiny runs with real processes."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def bench(env: dict[str, str], *args: str, timeout: float = 100) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "ragrelay.bench", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_overhead_prints_both_measurements_and_their_ratio_on_the_given_redis(
    base_env: dict[str, str], redis_url: str
) -> None:
    env = dict(base_env, RAGRELAY_REDIS_URL=redis_url)
    raw, pipe, summary = bench(env, "overhead", "--jobs", "40", "--warmup", "4", "--inflight", "4")
    assert raw["measurement"] == "raw_chain"
    assert pipe["measurement"] == "pipeline"
    assert raw["statuses"] == {"SUCCESS": 40}
    assert pipe["statuses"] == {"succeeded": 40}  # every zero-cost job ran all four stages
    for line in (raw, pipe):
        assert line["jobs"] == 40
        assert line["jobs_per_s"] > 0
        assert 0 < line["p50_ms"] <= line["p99_ms"] < 60_000
    assert set(raw["rss_peak_mb"]) == {"raw1", "raw2", "raw3", "raw4"}
    assert set(pipe["rss_peak_mb"]) == {
        "orchestrator",
        "analysis",
        "retrieval",
        "generation",
        "evaluation",
    }
    assert all(10 < mb < 1000 for mb in pipe["rss_peak_mb"].values())
    assert pipe["cpu_ms_per_job"]["orchestrator"] > 0
    assert summary["measurement"] == "overhead"
    assert summary["redis"] == "given"
    expected = round(pipe["jobs_per_s"] / raw["jobs_per_s"], 3)
    assert summary["pipeline_vs_raw_chain"] == pytest.approx(expected, abs=0.002)


def test_latency_reports_efficiency_against_littles_bound(base_env: dict[str, str]) -> None:
    (line,) = bench(
        base_env,
        "latency",
        "--llm",
        "sleep-fault",
        "--llm-delay-ms",
        "100",
        "--inflight",
        "10",
        "--jobs",
        "10",
    )
    assert line["llm"] == "sleep-fault"
    assert line["redis"] == "private"
    assert line["statuses"] == {"succeeded": 10}
    assert line["llm_calls_per_job"] == 3
    assert line["per_job_latency_s"] == pytest.approx(0.3)
    assert line["littles_bound_jobs_per_s"] == pytest.approx(10 / 0.3, abs=0.1)
    # three 100 ms sleeps in a row: no job can beat 300 ms, so efficiency cannot pass 1
    assert line["p50_ms"] >= 300
    assert 0 < line["efficiency"] <= 1.0
    assert line["efficiency"] == pytest.approx(
        line["jobs_per_s"] / line["littles_bound_jobs_per_s"], abs=0.01
    )


@pytest.mark.slow
def test_scale_out_adds_processes_of_the_bottleneck_stage(base_env: dict[str, str]) -> None:
    lines = bench(
        base_env,
        "latency",
        "--llm",
        "sleep-fault",
        "--llm-delay-ms",
        "200",
        "--inflight",
        "16",
        "--jobs",
        "16",
        "--scale-out",
        "generation",
        "--scale-concurrency",
        "2",
        "--scale-jobs",
        "16",
        timeout=110,
    )
    main, *scaled = lines
    assert main["measurement"] == "latency"
    assert [(s["measurement"], s["stage"], s["processes"]) for s in scaled] == [
        ("scale_out", "generation", 1),
        ("scale_out", "generation", 2),
        ("scale_out", "generation", 4),
    ]
    assert all(s["statuses"] == {"succeeded": 16} for s in scaled)
    # 2 threads per generation process, 200 ms each: at most 10 jobs/s per process
    assert scaled[0]["jobs_per_s"] <= 10.0
    assert scaled[2]["jobs_per_s"] > scaled[0]["jobs_per_s"]


def test_latency_on_the_sdk_path_prints_a_raw_chain_row_and_the_ratios(
    base_env: dict[str, str],
) -> None:
    pipe, raw, cmp = bench(
        base_env,
        "latency",
        "--llm",
        "anthropic",
        "--llm-delay-ms",
        "50",
        "--inflight",
        "4",
        "--jobs",
        "8",
        "--slices",
        "2",
        "--concurrency",
        "8",
        timeout=110,
    )
    assert pipe["measurement"] == "latency"
    assert pipe["llm"] == "anthropic"
    assert pipe["statuses"] == {"budget_exhausted": 8}
    assert raw["measurement"] == "raw_chain"
    assert raw["slices"] == 2
    assert raw["pool"] == pipe["pool"]
    assert raw["jobs"] == 8
    assert sum(raw["statuses"].values()) == 8
    assert set(raw["rss_peak_mb"]) == {"rawllm1", "rawllm2", "rawllm3"}
    for line in (pipe, raw):
        assert line["llm_calls_per_job"] == 3  # both sides make three SDK calls per job
        assert line["per_job_latency_s"] == pytest.approx(0.15)
        assert 0 < line["efficiency"] <= 1.0
        assert line["cpu_ms_per_job_total"] > 0
    assert cmp["measurement"] == "latency_vs_raw_chain"
    assert cmp["jobs_per_s_ratio"] == pytest.approx(
        pipe["jobs_per_s"] / raw["jobs_per_s"], abs=0.002
    )
    assert cmp["cpu_ms_per_job_ratio"] == pytest.approx(
        pipe["cpu_ms_per_job_total"] / raw["cpu_ms_per_job_total"], abs=0.002
    )

"""The whole pipeline on a real redis-server with every stage in its own OS process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.support.cluster import Cluster

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[2] / "ragrelay" / "sample" / "corpus.jsonl"


def ragrelay(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragrelay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cluster_env(base_env: dict[str, str], redis_url: str) -> dict[str, str]:
    env = dict(
        base_env,
        RAGRELAY_REDIS_URL=redis_url,
        RAGRELAY_BACKOFF_BASE_S="0.05",
        RAGRELAY_BACKOFF_MAX_S="0.2",
        RAGRELAY_LOG_LEVEL="INFO",
    )
    # Index the sample corpus into this test's data dir (embedded: no workers needed yet).
    out = ragrelay(base_env, "ingest", str(CORPUS), "--tenant", "demo")
    assert out.returncode == 0, out.stderr
    return env


def start(env: dict[str, str], tmp_path: Path, **extra: str) -> Cluster:
    return Cluster(dict(env, **extra), tmp_path / "logs").start_all()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, dict[str, str]]]:
    """One cluster on its own redis-server for the tests that inject no faults."""
    import os

    from tests.support.redis_server import RedisServer

    root = tmp_path_factory.mktemp("shared-cluster")
    server = RedisServer(root / "redis").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env.update(RAGRELAY_DATA_DIR=str(root / "data"), PYTHONPATH=str(CORPUS.parents[2]))
    out = ragrelay(env, "ingest", str(CORPUS), "--tenant", "demo")
    assert out.returncode == 0, out.stderr
    env["RAGRELAY_REDIS_URL"] = server.url
    c = Cluster(env, root / "logs").start_all()
    yield c, env
    c.stop()
    server.stop()


def test_ask_json_succeeds_with_four_stages_in_four_processes(
    shared: tuple[Cluster, dict[str, str]],
) -> None:
    _, cluster_env = shared
    out = ragrelay(
        cluster_env, "ask", "How are transient errors retried?", "--tenant", "demo", "--json"
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "succeeded"
    assert result["citations"] and result["citations"][0]["doc_id"] == "retries"
    pids = {e["stage"]: e["worker_pid"] for e in result["trace"] if e["type"] == "step.completed"}
    assert set(pids) == {"analysis", "retrieval", "generation", "evaluation"}
    assert len(set(pids.values())) == 4
    trace = ragrelay(cluster_env, "trace", result["job_id"], "--json")
    assert trace.returncode == 0 and "job.finished" in trace.stdout


def test_transient_failure_is_retried_and_the_job_succeeds(
    cluster_env: dict[str, str], tmp_path: Path, rclient: redis.Redis
) -> None:
    c = start(cluster_env, tmp_path, RAGRELAY_FAULTS="generation=transient:2")
    try:
        out = ragrelay(
            cluster_env,
            "ask",
            "What does the sweeper do with budgets?",
            "--tenant",
            "demo",
            "--json",
        )
    finally:
        c.stop()
    result = json.loads(out.stdout)
    assert result["status"] == "succeeded", result
    log = (tmp_path / "logs" / "generation.log").read_text()
    generations = [
        e for e in result["trace"] if e["type"] == "step.completed" and e["stage"] == "generation"
    ]
    assert generations  # each generation step (a close call is read twice) retried twice
    assert log.count('"step.retry"') == 2 * len(generations)
    assert rclient.xlen("ragrelay:dlq") == 0


def test_permanent_failure_is_not_retried_and_fails_the_job(
    cluster_env: dict[str, str], tmp_path: Path, rclient: redis.Redis
) -> None:
    c = start(cluster_env, tmp_path, RAGRELAY_FAULTS="analysis=permanent:5")
    try:
        out = ragrelay(cluster_env, "ask", "What is ragrelay?", "--tenant", "demo", "--json")
    finally:
        c.stop()
    result = json.loads(out.stdout)
    assert out.returncode == 1
    assert result["status"] == "failed" and result["stop_reason"] == "step_failed:analysis"
    assert "injected permanent fault 1/5" in result["error"]
    assert '"step.retry"' not in (tmp_path / "logs" / "analysis.log").read_text()
    assert rclient.xlen("ragrelay:dlq") == 1


def ask_two_iterations(env: dict[str, str], tmp_path: Path, faults: str) -> dict[str, Any]:
    """One question on a cluster with ``faults`` injected, at most two iterations."""
    c = start(env, tmp_path, RAGRELAY_FAULTS=faults)
    try:
        out = ragrelay(
            env,
            "ask",
            "How are results carried back?",
            "--tenant",
            "demo",
            "--json",
            "--max-iterations",
            "2",
        )
    finally:
        c.stop()
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_always_revise_ends_budget_exhausted_after_max_iterations(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    result = ask_two_iterations(cluster_env, tmp_path, "evaluation=revise")
    assert result["status"] == "budget_exhausted"
    assert result["stop_reason"] == "max_iterations" and result["iterations"] == 2
    assert result["answer"] and result["citations"]
    evaluations = [
        e for e in result["trace"] if e["type"] == "step.completed" and e["stage"] == "evaluation"
    ]
    assert len(evaluations) == 2


def test_a_reread_verdict_generates_again_in_the_worker_without_a_new_retrieval(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    result = ask_two_iterations(cluster_env, tmp_path, "evaluation=reread")
    assert (result["stop_reason"], result["iterations"]) == ("max_iterations", 2), result
    assert result["answer"] and result["citations"]
    done = [(e["stage"], e["iteration"]) for e in result["trace"] if e["type"] == "step.completed"]
    assert ("generation", 2) in done and ("evaluation", 2) in done
    assert ("analysis", 2) not in done and ("retrieval", 2) not in done


def test_invalid_message_on_a_stage_queue_is_dead_lettered_and_fails_its_job(
    cluster_env: dict[str, str], tmp_path: Path, redis_url: str, rclient: redis.Redis
) -> None:
    from bus.keys import Keys
    from orchestrator.jobs import JobStore
    from schemas import JobRequest

    # The real analysis step takes 3 s; meanwhile a corrupt copy of it arrives on the queue.
    c = start(cluster_env, tmp_path, RAGRELAY_FAULTS="analysis=sleep:3")
    try:
        jobs = JobStore(rclient, Keys())
        job_id, _ = jobs.submit(JobRequest(query="What is ragrelay?", tenant="demo"))
        app = Celery(broker=redis_url)
        app.send_task(
            "ragrelay.analysis",
            args=[
                {
                    "job_id": job_id,
                    "step_id": f"{job_id}/1/analysis/0",
                    "tenant": "demo",
                    "query": 42,
                }
            ],
            queue="analysis",
        )
        app.send_task("ragrelay.generation", args=["not json at all"], queue="generation")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            jobs.result(job_id) is None or rclient.xlen("ragrelay:dlq") < 2
        ):
            time.sleep(0.1)
        result = jobs.result(job_id)
        entries = rclient.xrange("ragrelay:dlq")
        app.close()
    finally:
        c.stop()
    reasons = sorted(f[b"reason"].decode() for _, f in entries)
    assert len(entries) == 2
    assert any("query: Input should be a valid string" in r for r in reasons)
    assert any("Invalid JSON" in r for r in reasons)
    assert result is not None and result.status == "failed"
    assert result.stop_reason == "step_failed:analysis"
    assert "query: Input should be a valid string" in (result.error or "")


def test_celery_send_task_ingress_validates_and_answers_in_the_result_key(
    shared: tuple[Cluster, dict[str, str]],
) -> None:
    redis_url = shared[1]["RAGRELAY_REDIS_URL"]
    app = Celery(broker=redis_url, backend=redis_url)
    ok = app.send_task(
        "ragrelay.submit",
        args=[{"query": "What is a trace?", "tenant": "demo"}],
        queue="orchestrator",
    )
    bad = app.send_task("ragrelay.submit", args=[{"tenant": "demo"}], queue="orchestrator")
    good_result = ok.get(timeout=30)
    bad_result = bad.get(timeout=30)
    app.close()
    assert good_result["status"] == "succeeded" and good_result["job_id"] == ok.id
    assert bad_result["status"] == "failed"
    assert "query: Field required" in bad_result["error"]


def test_same_idempotency_key_submitted_twice_returns_the_same_job(
    shared: tuple[Cluster, dict[str, str]],
) -> None:
    _, cluster_env = shared
    args = ("ask", "What is ragrelay?", "--tenant", "demo", "--json", "--idempotency-key", "abc")
    first = json.loads(ragrelay(cluster_env, *args).stdout)
    second = json.loads(ragrelay(cluster_env, *args).stdout)
    assert first["job_id"] == second["job_id"]

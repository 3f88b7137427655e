"""Celery-protocol ingress driven by clients nobody here wrote, against a real cluster.

- celery-node (npm, Node.js): task protocol v2 and v1, over Redis, reading the result from
  the Redis result backend key ``celery-task-meta-<task id>``.
- a bare Python Celery client run as a subprocess that imports nothing from ragrelay.
Malformed payloads give failed jobs with the validation error; the workers stay up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from bus.settings import Settings
from ragrelay.gateway import create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from tests.interop.support import start_pipeline
from tests.support.cluster import Cluster, sample_corpus_env
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
NODE_DIR = HERE / "node"
GOOD = {"query": "How are transient errors retried?", "tenant": "acme"}


@pytest.fixture(scope="module")
def node_client() -> Path:
    """celery-node installed from the committed package-lock.json (`npm ci` when missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are required for the celery-node interop test")
    if not (NODE_DIR / "node_modules" / "celery-node" / "package.json").exists():
        out = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, f"npm ci failed:\n{out.stdout}\n{out.stderr}"
    return NODE_DIR / "submit.js"


@pytest.fixture(scope="module")
def cluster_env(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    client = redis_server.client()
    client.flushall()
    client.close()
    env = sample_corpus_env(tmp_path_factory.mktemp("interop-data"), "acme")
    return dict(env, RAGRELAY_REDIS_URL=redis_server.url)


@pytest.fixture(scope="module")
def cluster(
    cluster_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    c = start_pipeline(cluster_env, tmp_path_factory.mktemp("interop-logs"))
    yield c
    c.stop()


def run_node(script: Path, url: str, protocol: int, payloads: list[Any]) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["node", str(script), url, str(protocol), json.dumps(payloads), "60000"],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def run_bare_python(url: str, payloads: list[Any], tmp_path: Path) -> list[dict[str, Any]]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_") and k != "PYTHONPATH"
    }
    out = subprocess.run(
        [sys.executable, str(HERE / "bare_celery_client.py"), url, json.dumps(payloads), "60"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return rows


def assert_alive(cluster: Cluster) -> None:
    dead = {name: p.returncode for name, p in cluster.procs.items() if p.poll() is not None}
    assert not dead, f"processes exited: {dead}"


def test_celery_node_submits_jobs_and_reads_results_with_both_task_protocols(
    cluster: Cluster, node_client: Path, cluster_env: dict[str, str]
) -> None:
    url = cluster_env["RAGRELAY_REDIS_URL"]
    v2 = run_node(node_client, url, 2, [GOOD, {**GOOD, "budget": {"max_iterations": 1}}])
    v1 = run_node(node_client, url, 1, [GOOD])
    for row in [*v2, *v1]:
        result = row["result"]
        assert result["job_id"] == row["task_id"]  # the job id is the Celery task id
        assert result["tenant"] == "acme" and result["answer"] and result["citations"]
    assert v2[0]["result"]["status"] == v1[0]["result"]["status"] == "succeeded"
    # The budget travelled with the payload: one iteration at most, then a stop reason.
    assert v2[1]["result"]["iterations"] == 1
    assert v2[1]["result"]["status"] in ("succeeded", "budget_exhausted")
    # The same job is also visible through ragrelay's own store and trace, and over HTTP
    # at /v1/jobs/<task id> to a key of its tenant (only).
    client = redis.Redis.from_url(url)
    task_id = v1[0]["task_id"]
    assert client.exists(f"ragrelay:result:{task_id}") == 1
    assert client.xlen(f"ragrelay:trace:{task_id}") >= 5
    store = ApiKeyStore(client)
    acme, globex = (f"Bearer {store.create(t)[1]}" for t in ("acme", "globex"))
    with TestClient(create_app(Settings(redis_url=url))) as http:
        view = http.get(f"/v1/jobs/{task_id}", headers={"Authorization": acme})
        denied = http.get(f"/v1/jobs/{task_id}", headers={"Authorization": globex})
    client.close()
    assert view.status_code == 200 and view.json()["result"] == v1[0]["result"]
    assert denied.status_code == 403


def test_malformed_payloads_from_celery_node_fail_their_jobs_with_the_reason(
    cluster: Cluster, node_client: Path, cluster_env: dict[str, str]
) -> None:
    url = cluster_env["RAGRELAY_REDIS_URL"]
    rows = run_node(
        node_client,
        url,
        2,
        [
            {"tenant": "acme"},  # no query
            {"query": "   ", "tenant": "acme"},  # blank query
            {"query": "q", "tenant": "acme", "budget": {"max_iterations": 0}},
            {"query": "q", "tenant": "acme", "colour": "blue"},  # unknown field
            "just a string",
            [1, 2, 3],
        ],
    )
    errors = [r["result"]["error"] for r in rows]
    assert all(r["result"]["status"] == "failed" for r in rows)
    assert all(r["result"]["stop_reason"] == "invalid_request" for r in rows)
    assert "query: Field required" in errors[0]
    assert "query: Value error, query must not be blank" in errors[1]
    assert "budget.max_iterations: Input should be greater than or equal to 1" in errors[2]
    assert "colour: Extra inputs are not permitted" in errors[3]
    assert "expected a JSON object, got str" in errors[4] or "Invalid JSON" in errors[4]
    assert "expected a JSON object, got list" in errors[5]
    assert rows[0]["result"]["tenant"] == "acme" and rows[4]["result"]["tenant"] == "unknown"
    assert_alive(cluster)
    after = run_node(node_client, url, 2, [GOOD])
    assert after[0]["result"]["status"] == "succeeded"


def test_bare_python_celery_client_without_ragrelay_imports(
    cluster: Cluster, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    url = cluster_env["RAGRELAY_REDIS_URL"]
    rows = run_bare_python(url, [GOOD, {"tenant": "acme", "query": 42}], tmp_path)
    good, bad = rows
    assert good["result"]["status"] == "succeeded" and good["result"]["job_id"] == good["task_id"]
    assert good["result"]["citations"]
    assert bad["result"]["status"] == "failed"
    assert "query: Input should be a valid string" in bad["result"]["error"]
    assert_alive(cluster)


def test_the_readme_snippet_run_twice_with_one_idempotency_key_gets_the_original_job(
    cluster: Cluster, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 22, items 4 and 7: a second submission of the same key does not hang; its own
    result key carries the original job's result (``job_id`` names it), with the trace."""
    url = cluster_env["RAGRELAY_REDIS_URL"]
    keyed = {**GOOD, "idempotency_key": "order-1234"}
    # both at once: the second arrives while the original job runs
    first, racing = run_bare_python(url, [keyed, keyed], tmp_path)
    # the snippet run again later: the original job has ended
    (later,) = run_bare_python(url, [keyed], tmp_path)
    original = first["task_id"]
    assert first["result"]["job_id"] == original and first["result"]["status"] == "succeeded"
    for dup in (racing, later):
        assert dup["task_id"] != original
        assert dup["result"]["job_id"] == original  # points to the original job
        assert dup["result"]["answer"] == first["result"]["answer"]
    for row in (first, racing, later):
        trace = row["result"]["trace"]  # as `ask --json` gives it
        assert trace[0]["type"] == "job.submitted" and trace[-1]["type"] == "job.finished"
        assert {e["job_id"] for e in trace} == {original}
    client = redis.Redis.from_url(url)
    assert client.exists(f"ragrelay:job:{racing['task_id']}") == 0  # no second job
    assert client.exists(f"celery-task-meta-{later['task_id']}") == 1
    client.close()
    assert_alive(cluster)


def test_an_invalid_submit_is_listed_in_the_dlq_with_its_job_id(
    cluster: Cluster, cluster_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 22, item 13: the task id is the job id, so the dead letter names it."""
    url = cluster_env["RAGRELAY_REDIS_URL"]
    (bad,) = run_bare_python(url, [{"tenant": "acme"}], tmp_path)
    assert bad["result"]["job_id"] == bad["task_id"]
    assert [e["type"] for e in bad["result"]["trace"]] == ["job.finished"]
    out = subprocess.run(
        [sys.executable, "-m", "ragrelay", "dlq", "list", "--json", "--kind", "invalid"],
        env=cluster_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    mine = [r for r in rows if r.get("task_id") == bad["task_id"]]
    assert len(mine) == 1 and mine[0]["job_id"] == bad["task_id"]
    table = subprocess.run(
        [sys.executable, "-m", "ragrelay", "dlq", "list"],
        env=cluster_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows_shown = [x for x in table.stdout.splitlines() if "ragrelay.submit" in x]
    assert any(f" {bad['task_id'][:12]} " in x for x in rows_shown), table.stdout
    assert not any(" - " in x.split("invalid", 1)[1][:16] for x in rows_shown), table.stdout

"""The gateway over real uvicorn in front of a real cluster (orchestrator + 4 worker processes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from tests.conftest import REPO
from tests.integration.test_gateway import parse_sse
from tests.interop.support import serve_in_thread, start_pipeline, wait_http
from tests.support.cluster import Cluster, sample_corpus_env
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    client = redis_server.client()
    client.flushall()
    client.close()
    data = tmp_path_factory.mktemp("gateway-data")
    env = sample_corpus_env(data, "acme")
    env.update(
        RAGRELAY_REDIS_URL=redis_server.url,
        RAGRELAY_LOG_LEVEL="INFO",
        RAGRELAY_HEARTBEAT_DIR=str(data / "heartbeats"),
    )
    return env


@pytest.fixture(scope="module")
def cluster(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Generation sleeps 1 s so a job is observably running while its events stream.
    c = start_pipeline(
        dict(env, RAGRELAY_FAULTS="generation=sleep:1"), tmp_path_factory.mktemp("gateway-logs")
    )
    yield c
    c.stop()


@pytest.fixture(scope="module")
def base_url(cluster: Cluster, env: dict[str, str]) -> Iterator[str]:
    settings = Settings(
        redis_url=env["RAGRELAY_REDIS_URL"], heartbeat_dir=Path(env["RAGRELAY_HEARTBEAT_DIR"])
    )
    with serve_in_thread(create_app(settings, GatewayConfig())) as url:
        yield url


@pytest.fixture(scope="module")
def keys(env: dict[str, str], base_url: str) -> dict[str, dict[str, str]]:
    store = ApiKeyStore(redis.Redis.from_url(env["RAGRELAY_REDIS_URL"]))
    return {t: {"Authorization": f"Bearer {store.create(t)[1]}"} for t in ("acme", "globex")}


def test_submit_watch_events_live_read_result_and_leave_feedback(
    base_url: str, keys: dict[str, dict[str, str]]
) -> None:
    acme = keys["acme"]
    with httpx.Client(base_url=base_url, timeout=30) as http:
        accepted = http.post(
            "/v1/jobs",
            json={"query": "How are transient errors retried?"},
            headers={**acme, "Idempotency-Key": "live-1"},
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["job_id"]
        frames: list[dict[str, str]] = []
        seen_while_running = False
        with http.stream("GET", f"/v1/jobs/{job_id}/events", headers=acme) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            buffer = ""
            for chunk in stream.iter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    frames += parse_sse(block + "\n\n")
                    if frames and not seen_while_running and frames[-1].get("event") != "result":
                        status = http.get(f"/v1/jobs/{job_id}", headers=acme).json()["status"]
                        seen_while_running = status == "running"
        kinds = [f.get("event") for f in frames]
        assert kinds[0] == "job.submitted" and kinds[-2] == "job.finished"
        assert kinds[-1] == "result"
        assert "step.completed" in kinds
        assert seen_while_running, "events should arrive while the job is still running"
        result = json.loads(frames[-1]["data"])
        assert result["job_id"] == job_id and result["status"] == "succeeded"

        view = http.get(f"/v1/jobs/{job_id}", headers=acme).json()
        assert view["status"] == "succeeded" and view["result"]["answer"] == result["answer"]
        assert view["result"]["citations"]

        # Resume after the third event: the rest of the trace, then the result again.
        resumed = parse_sse(
            http.get(
                f"/v1/jobs/{job_id}/events", headers={**acme, "Last-Event-ID": frames[2]["id"]}
            ).text
        )
        assert [f.get("id") for f in resumed[:-1]] == [f["id"] for f in frames[3:-1]]
        assert resumed[-1]["event"] == "result"

        again = http.post(
            "/v1/jobs",
            json={"query": "How are transient errors retried?"},
            headers={**acme, "Idempotency-Key": "live-1"},
        )
        assert again.json()["job_id"] == job_id and again.json()["status"] == "succeeded"

        fb = http.post(
            f"/v1/jobs/{job_id}/feedback", headers=acme, json={"rating": 5, "comment": "spot on"}
        )
        assert fb.status_code == 201
        assert http.get(f"/v1/jobs/{job_id}/events", headers=keys["globex"]).status_code == 403


def test_readyz_is_ready_with_the_cluster_running(base_url: str) -> None:
    resp = httpx.get(f"{base_url}/readyz", timeout=10)
    assert resp.status_code == 200, resp.text
    checks = resp.json()["checks"]
    assert checks["orchestrators"] == 1
    assert {"orchestrator", "analysis", "retrieval", "generation", "evaluation"} <= set(
        checks["heartbeats_age_s"]
    )


def test_ragrelay_serve_runs_the_gateway_on_the_given_port(
    env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ragrelay.cli.gateway import serve; serve()",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=dict(env, RAGRELAY_GATEWAY_BURST="5"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        assert httpx.get(f"http://127.0.0.1:{port}/v1/jobs/x", timeout=5).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    # uvicorn re-raises SIGTERM after its graceful shutdown
    assert proc.returncode in (0, -15), (tmp_path / "serve.log").read_text()
    assert "Application shutdown complete" in (tmp_path / "serve.log").read_text()


def test_serve_without_redis_refuses_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env.update(PYTHONPATH=str(REPO), RAGRELAY_DATA_DIR=str(tmp_path))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from ragrelay.cli.app import main; from ragrelay.cli import app as cli;"
            "from ragrelay.cli.gateway import serve; cli.cli.add_command(serve); main()",
            "serve",
            "--port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "needs Redis: set RAGRELAY_REDIS_URL" in out.stderr
    assert "Traceback" not in out.stderr

"""Admission control on a real redis-server: the gateway's 429, the Celery ingress's
``rejected`` result, the atomic check in the submit script, and accepted jobs finishing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from fastapi.testclient import TestClient

from bus.errors import AdmissionRejected
from bus.keys import Keys
from bus.settings import Settings
from orchestrator.admission import AdmissionLimits
from orchestrator.jobs import JobStore
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from schemas import JobRequest
from tests.integration.test_pipeline_redis import CORPUS, ragrelay
from tests.support.cluster import Cluster

pytestmark = pytest.mark.integration


def gateway(settings: Settings) -> TestClient:
    cfg = GatewayConfig(rate_per_s=1000.0, burst=1000)
    return TestClient(create_app(settings, cfg), raise_server_exceptions=False)


def bearer(store: ApiKeyStore, tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {store.create(tenant)[1]}"}


@pytest.fixture
def limited(redis_url: str) -> Iterator[tuple[TestClient, ApiKeyStore]]:
    settings = Settings(
        redis_url=redis_url, admission_tenant_in_flight=2, admission_queue_limits={"analysis": 3}
    )
    with gateway(settings) as client:
        yield client, ApiKeyStore(redis.Redis.from_url(redis_url))


def test_gateway_answers_429_with_retry_after_naming_the_tenant_limit(
    limited: tuple[TestClient, ApiKeyStore],
) -> None:
    client, store = limited
    acme, globex = bearer(store, "acme"), bearer(store, "globex")
    first = client.post("/v1/jobs", json={"query": "q1"}, headers={**acme, "Idempotency-Key": "k1"})
    assert first.status_code == 202
    assert client.post("/v1/jobs", json={"query": "q2"}, headers=acme).status_code == 202
    refused = client.post("/v1/jobs", json={"query": "q3"}, headers=acme)
    assert refused.status_code == 429, refused.text
    assert refused.headers["Retry-After"] == "5"
    assert refused.headers["X-Ragrelay-Limit"] == "tenant_in_flight; subject=acme; max=2"
    assert "tenant_in_flight" in refused.json()["detail"]
    assert "2 jobs in flight (limit 2)" in refused.json()["detail"]
    # a known idempotency key names a job already admitted: never refused
    again = client.post("/v1/jobs", json={"query": "q1"}, headers={**acme, "Idempotency-Key": "k1"})
    assert again.status_code == 202 and again.json()["job_id"] == first.json()["job_id"]
    # another tenant has its own count
    assert client.post("/v1/jobs", json={"query": "q4"}, headers=globex).status_code == 202


def test_gateway_answers_429_naming_a_full_queue(
    limited: tuple[TestClient, ApiKeyStore], rclient: redis.Redis
) -> None:
    client, store = limited
    rclient.lpush("analysis", *[b"stand-in task"] * 3)  # no worker here: the queue stays full
    refused = client.post("/v1/jobs", json={"query": "q"}, headers=bearer(store, "acme"))
    assert refused.status_code == 429
    assert refused.headers["X-Ragrelay-Limit"] == "queue_depth; subject=analysis; max=3"
    assert "queue 'analysis' holds 3 tasks (limit 3)" in refused.json()["detail"]
    assert rclient.zcard(Keys().running) == 0  # nothing half-written
    rclient.rpop("analysis")
    assert client.post("/v1/jobs", json={"query": "q"}, headers=bearer(store, "acme")).status_code
    assert rclient.zcard(Keys().running) == 1


def test_the_check_is_atomic_when_submissions_race(rclient: redis.Redis) -> None:
    limits = AdmissionLimits(tenant_in_flight=5)
    outcomes: list[str] = []
    go = threading.Event()

    def submit(i: int) -> None:
        client = redis.Redis(connection_pool=rclient.connection_pool)
        store = JobStore(client, Keys(), admission=limits)
        go.wait()
        try:
            store.submit(JobRequest(query=f"q{i}", tenant="acme"))
            outcomes.append("created")
        except AdmissionRejected as exc:
            outcomes.append(exc.limit)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(timeout=30)
    assert outcomes.count("created") == 5
    assert outcomes.count("tenant_in_flight") == 19
    assert rclient.zcard(Keys().in_flight("acme")) == 5


def test_a_leaked_in_flight_entry_long_past_its_deadline_is_not_counted(
    rclient: redis.Redis,
) -> None:
    store = JobStore(rclient, Keys(), admission=AdmissionLimits(tenant_in_flight=1))
    rclient.zadd(Keys().in_flight("acme"), {"lost-job": time.time() - 3600})
    job_id, created = store.submit(JobRequest(query="q", tenant="acme"))
    assert created
    assert rclient.zrange(Keys().in_flight("acme"), 0, -1) == [job_id.encode()]


# -- the Celery ingress, with real orchestrator and worker processes -------------------------------
@pytest.fixture
def env(base_env: dict[str, str], redis_url: str) -> dict[str, str]:
    out = ragrelay(base_env, "ingest", str(CORPUS), "--tenant", "demo")
    assert out.returncode == 0, out.stderr
    return dict(
        base_env,
        RAGRELAY_REDIS_URL=redis_url,
        RAGRELAY_ADMISSION_TENANT_IN_FLIGHT="2",
        RAGRELAY_ADMISSION_QUEUE_LIMITS='{"retrieval": 1000}',
    )


def send(app: Celery, query: str) -> Any:
    return app.send_task(
        "ragrelay.submit", args=[{"query": query, "tenant": "demo"}], queue="orchestrator"
    )


def test_celery_ingress_returns_rejected_and_accepted_jobs_still_finish(
    env: dict[str, str], redis_url: str, rclient: redis.Redis, tmp_path: Path
) -> None:
    cluster = Cluster(env, tmp_path / "logs")
    cluster.start("orchestrator", "orchestrator")  # no stage workers yet: jobs stay in flight
    cluster.wait_ready()
    app = Celery(broker=redis_url, backend=redis_url)
    try:
        accepted = [send(app, "What is a trace?"), send(app, "What is a span?")]
        deadline = time.monotonic() + 60
        while rclient.zcard(Keys().in_flight("demo")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = send(app, "What is a metric?").get(timeout=60)
        assert refused["status"] == "rejected"
        assert refused["stop_reason"] == "rejected:tenant_in_flight"
        assert "tenant 'demo' has 2 jobs in flight (limit 2)" in refused["error"]
        assert not rclient.exists(Keys().job(refused["job_id"]))  # it never ran

        for stage in ("analysis", "retrieval", "generation", "evaluation"):
            cluster.start(stage, "worker", stage, "--concurrency", "1")
        cluster.wait_ready()
        for res in accepted:
            assert res.get(timeout=90)["status"] == "succeeded"
        assert rclient.zcard(Keys().in_flight("demo")) == 0  # the finish freed the slots
        assert send(app, "What is a log?").get(timeout=90)["status"] == "succeeded"
    finally:
        app.close()
        cluster.stop()

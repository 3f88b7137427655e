"""Caps on open event streams, on real uvicorn over loopback with a private redis-server:
per API key and per tenant across replicas (429), per process (503), slots given back on
disconnect, kept while open, and freed by expiry when a replica dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from bus.keys import Keys
from bus.settings import Settings
from orchestrator.jobs import JobStore
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore, key_id_of
from schemas import JobRequest, JobResult
from tests.interop.support import serve_in_thread, wait_http
from tests.support.redis_server import free_port

pytestmark = pytest.mark.integration

# Fast loops so a test sees a closed stream within a fraction of a second.
FAST = {
    "rate_per_s": 1000.0,
    "burst": 1000,
    "sse_block_ms": 100,
    "sse_keepalive_s": 0.5,
    "require_workers": False,
}


@contextlib.contextmanager
def gateway(redis_url: str, **config: object) -> Iterator[str]:
    cfg = GatewayConfig(**{**FAST, **config})  # type: ignore[arg-type]
    app = create_app(Settings(redis_url=redis_url), cfg)
    with serve_in_thread(app, proxy_headers=False) as url:
        yield url


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def running_job(rclient: redis.Redis, tenant: str) -> str:
    """A job that never ends here (no workers): its stream stays open."""
    job_id, _ = JobStore(rclient, Keys()).submit(JobRequest(query="q", tenant=tenant))
    return job_id


@contextlib.contextmanager
def stream(http: httpx.Client, job_id: str, key: str) -> Iterator[httpx.Response]:
    """An events stream held open; when it is a 200, its first trace event has arrived."""
    with http.stream("GET", f"/v1/jobs/{job_id}/events", headers=bearer(key)) as resp:
        if resp.status_code == 200:
            chunks = resp.iter_text()  # kept: a dropped iterator closes the response
            seen = ""
            while "event: job.submitted" not in seen:
                seen += next(chunks)
        else:
            resp.read()
        yield resp


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def store(rclient: redis.Redis) -> ApiKeyStore:
    return ApiKeyStore(rclient)


def test_streams_past_the_cap_of_a_key_or_its_tenant_get_429_with_retry_after(
    redis_url: str, rclient: redis.Redis, store: ApiKeyStore
) -> None:
    a1, a2, a3 = (store.create("acme")[1] for _ in range(3))
    g1 = store.create("globex")[1]
    job, other = running_job(rclient, "acme"), running_job(rclient, "globex")
    with (
        gateway(redis_url, sse_max_per_key=2, sse_max_per_tenant=3, sse_retry_after_s=7) as url,
        httpx.Client(base_url=url, timeout=10) as http,
        contextlib.ExitStack() as held,
    ):
        assert [held.enter_context(stream(http, job, a1)).status_code for _ in range(2)] == [
            200,
            200,
        ]
        third = held.enter_context(stream(http, job, a1))
        assert third.status_code == 429 and third.headers["retry-after"] == "7"
        assert third.json()["detail"] == (
            "this API key already has 2 open event streams, the "
            "most allowed; close one or retry later"
        )
        assert held.enter_context(stream(http, job, a2)).status_code == 200  # tenant: 3 of 3
        tenant_full = held.enter_context(stream(http, job, a3))
        assert tenant_full.status_code == 429 and tenant_full.headers["retry-after"] == "7"
        assert tenant_full.json()["detail"].startswith(
            "tenant 'acme' already has 3 open event streams"
        )
        assert held.enter_context(stream(http, other, g1)).status_code == 200  # its own cap
        assert http.get(f"/v1/jobs/{job}", headers=bearer(a1)).status_code == 200  # not capped
    assert rclient.zcard(f"ragrelay:sse:key:{key_id_of(a1)}") == 0
    assert rclient.zcard("ragrelay:sse:tenant:acme") == 0


def test_a_closed_stream_gives_its_slot_and_redis_connection_back_at_once(
    redis_url: str, rclient: redis.Redis, store: ApiKeyStore
) -> None:
    key = store.create("acme")[1]
    job = running_job(rclient, "acme")
    slots = f"ragrelay:sse:key:{key_id_of(key)}"
    # One stream per process: its pool holds 1 + 16 connections, so a stream that kept its
    # connection (or its slot) after the client left would stop the loop within 17 rounds.
    with (
        gateway(redis_url, sse_max_per_key=1, sse_max_streams=1, sse_lease_s=600) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        for _ in range(40):
            with stream(http, job, key) as resp:
                assert resp.status_code == 200, resp.text
                assert rclient.zcard(slots) == 1
            assert wait_until(lambda: rclient.zcard(slots) == 0), "slot kept after disconnect"
    assert rclient.zcard("ragrelay:sse:tenant:acme") == 0


def test_a_finished_stream_gives_its_slot_back(
    redis_url: str, rclient: redis.Redis, store: ApiKeyStore
) -> None:
    key = store.create("acme")[1]
    job = running_job(rclient, "acme")
    rclient.set(
        Keys().result(job),
        JobResult(job_id=job, tenant="acme", status="succeeded", stop_reason="accepted").to_json(),
    )
    with (
        gateway(redis_url, sse_max_per_key=1, sse_lease_s=600) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        for _ in range(3):
            resp = http.get(f"/v1/jobs/{job}/events", headers=bearer(key))
            assert resp.status_code == 200 and "event: result" in resp.text
    assert rclient.zcard(f"ragrelay:sse:key:{key_id_of(key)}") == 0


def test_a_stream_left_open_keeps_its_slot_past_the_lease_time(
    redis_url: str, rclient: redis.Redis, store: ApiKeyStore
) -> None:
    key = store.create("acme")[1]
    job = running_job(rclient, "acme")
    with (
        gateway(redis_url, sse_max_per_key=1, sse_lease_s=1) as url,
        httpx.Client(base_url=url, timeout=10) as http,
        stream(http, job, key) as first,
    ):
        assert first.status_code == 200
        time.sleep(2.5)  # 2.5 lease times: only its refreshes keep the slot taken
        with stream(http, job, key) as second:
            assert second.status_code == 429


def test_a_gateway_process_serves_at_most_its_streams_on_a_bounded_redis_pool(
    redis_url: str, rclient: redis.Redis, store: ApiKeyStore
) -> None:
    keys = [store.create(f"t{i}")[1] for i in range(4)]
    jobs = [running_job(rclient, f"t{i}") for i in range(4)]
    cfg = GatewayConfig(**{**FAST, "sse_max_streams": 3})  # type: ignore[arg-type]
    app = create_app(Settings(redis_url=redis_url), cfg)
    pool = app.state.services.aredis.connection_pool
    assert type(pool).__name__ == "BlockingConnectionPool" and pool.max_connections == 3 + 16
    with (
        serve_in_thread(app, proxy_headers=False) as url,
        httpx.Client(base_url=url, timeout=10) as http,
        contextlib.ExitStack() as held,
    ):
        assert [
            held.enter_context(stream(http, j, k)).status_code
            for j, k in zip(jobs[:3], keys[:3], strict=True)
        ] == [200, 200, 200]
        busy = held.enter_context(stream(http, jobs[3], keys[3]))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "10"
        assert "already serves 3 event streams" in busy.json()["detail"]
        assert wait_until(lambda: rclient.zcard("ragrelay:sse:tenant:t3") == 0)  # given back
        names = [c["name"] for c in rclient.client_list()]
        assert 3 <= names.count("ragrelay-gateway") <= 3 + 16
    assert app.state.services.streams.open_here == 0


def test_a_stream_cut_by_the_servers_shutdown_gives_its_slot_back(
    redis_url: str, rclient: redis.Redis, store: ApiKeyStore
) -> None:
    key = store.create("acme")[1]
    job = running_job(rclient, "acme")
    cfg = GatewayConfig(**{**FAST, "sse_lease_s": 600})  # type: ignore[arg-type]
    app = create_app(Settings(redis_url=redis_url), cfg)
    with (
        serve_in_thread(app, proxy_headers=False, timeout_graceful_shutdown=0.3) as url,
        contextlib.ExitStack() as held,
    ):
        http = httpx.Client(base_url=url, timeout=10)
        assert held.enter_context(stream(http, job, key)).status_code == 200
        held.pop_all()  # still open when the server stops: uvicorn cancels its task
        assert rclient.zcard("ragrelay:sse:tenant:acme") == 1
    http.close()
    assert rclient.zcard("ragrelay:sse:tenant:acme") == 0


def test_slots_count_across_replicas_and_a_dead_replicas_slots_expire(
    redis_url: str,
    rclient: redis.Redis,
    store: ApiKeyStore,
    base_env: dict[str, str],
    tmp_path: Path,
) -> None:
    dead_key, live_key, new_key = (store.create("acme")[1] for _ in range(3))
    job = running_job(rclient, "acme")
    port = free_port()
    env = dict(
        base_env,
        RAGRELAY_REDIS_URL=redis_url,
        RAGRELAY_GATEWAY_SSE_MAX_PER_KEY="1",
        RAGRELAY_GATEWAY_SSE_MAX_PER_TENANT="2",
        RAGRELAY_GATEWAY_SSE_LEASE_S="2",
        RAGRELAY_GATEWAY_SSE_BLOCK_MS="100",
        RAGRELAY_GATEWAY_REQUIRE_WORKERS="false",
    )
    with (tmp_path / "serve.log").open("wb") as log:
        replica = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ragrelay.cli.gateway import serve; serve()",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            with (
                httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
                stream(http, job, dead_key) as resp,
            ):
                assert resp.status_code == 200
                os.kill(replica.pid, signal.SIGKILL)  # dies holding the stream: no finally
                replica.wait(timeout=10)
        finally:
            if replica.poll() is None:
                replica.kill()
                replica.wait(timeout=10)
    assert rclient.zcard(f"ragrelay:sse:key:{key_id_of(dead_key)}") == 1
    with (
        gateway(redis_url, sse_max_per_key=1, sse_max_per_tenant=2, sse_lease_s=2) as url,
        httpx.Client(base_url=url, timeout=10) as http,
        stream(http, job, live_key) as live,
    ):
        assert live.status_code == 200  # the tenant's 2nd stream: the dead one still counts
        with stream(http, job, dead_key) as refused:
            assert refused.status_code == 429  # another replica's stream counts here
        with stream(http, job, new_key) as refused:
            assert refused.status_code == 429 and "tenant 'acme'" in refused.json()["detail"]
        time.sleep(2.5)  # the dead lease expires; the live one is refreshed in the same set
        with stream(http, job, new_key) as accepted:
            assert accepted.status_code == 200

"""Rate limiting of failed authentication per client address, on real uvicorn over loopback
with a private redis-server; two addresses are two loopback source IPs (127.0.0.1, .2)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from ragrelay.gateway.ratelimit import FailureBucket
from tests.interop.support import serve_in_thread, wait_http
from tests.support.redis_server import free_port

pytestmark = pytest.mark.integration

# 3 failures at once, then one a second: Retry-After is 1 s once the bucket is empty.
LIMITS = {
    "rate_per_s": 1000.0,
    "burst": 1000,
    "auth_failure_burst": 3,
    "auth_failures_per_min": 60.0,
    "require_workers": False,
}
WRONG = {"Authorization": "Bearer rr_000000000000_" + "x" * 43}


def app_for(redis_url: str, **config: object) -> object:
    return create_app(Settings(redis_url=redis_url), GatewayConfig(**{**LIMITS, **config}))  # type: ignore[arg-type]


@contextlib.contextmanager
def gateway(redis_url: str, **uvicorn_options: object) -> Iterator[str]:
    with serve_in_thread(
        app_for(redis_url),
        **{
            "proxy_headers": False,  # type: ignore[arg-type]
            **uvicorn_options,
        },
    ) as url:
        yield url


def client(url: str, source: str = "127.0.0.1") -> httpx.Client:
    return httpx.Client(
        base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address=source)
    )


@pytest.fixture
def valid(rclient: redis.Redis) -> dict[str, str]:
    return {"Authorization": f"Bearer {ApiKeyStore(rclient).create('acme')[1]}"}


def test_past_the_burst_of_failures_an_address_is_refused_even_with_a_valid_key(
    redis_url: str, valid: dict[str, str]
) -> None:
    with gateway(redis_url) as url, client(url) as http:
        assert http.get("/v1/jobs/nope", headers=valid).status_code == 404  # before: fine
        failures = [
            http.get("/v1/jobs/nope").status_code,  # no key at all
            http.get("/v1/jobs/nope", headers=WRONG).status_code,  # a wrong key
            http.post(
                "/ui/session",
                data={"key": "guess"},  # the /ui sign-in form
                headers={"Origin": url},
            ).status_code,
        ]
        assert failures == [401, 401, 401]
        refused = http.get("/v1/jobs/nope", headers=WRONG)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "detail": "too many failed authentications from this address; retry after 1 s"
        }
        with_valid = http.post("/v1/jobs", json={"query": "q"}, headers=valid)
        assert with_valid.status_code == 429  # the key is not even looked at
        assert http.get("/healthz").status_code == 200  # probes are never refused
        assert http.get("/readyz").status_code == 200
        time.sleep(1.1)  # one failure's worth refilled
        assert http.get("/v1/jobs/nope", headers=valid).status_code == 404
        assert http.get("/v1/jobs/nope", headers=WRONG).status_code == 401
        assert http.get("/v1/jobs/nope", headers=valid).status_code == 429  # empty again


def test_another_address_is_not_refused_and_a_forged_forwarded_for_changes_nothing(
    redis_url: str, valid: dict[str, str], rclient: redis.Redis
) -> None:
    with gateway(redis_url) as url, client(url) as one, client(url, "127.0.0.2") as two:
        for _ in range(3):
            assert one.get("/v1/jobs/nope", headers=WRONG).status_code == 401
        assert one.get("/v1/jobs/nope", headers=valid).status_code == 429
        assert two.get("/v1/jobs/nope", headers=valid).status_code == 404
        # Without --proxy-headers the peer address counts, whatever the client claims.
        forged = {**WRONG, "X-Forwarded-For": "198.51.100.9"}
        assert one.get("/v1/jobs/nope", headers=forged).status_code == 429
    assert sorted(rclient.keys("ragrelay:authfail:*")) == [b"ragrelay:authfail:127.0.0.1"]


def test_replicas_share_the_failures_of_an_address(redis_url: str, valid: dict[str, str]) -> None:
    with (
        gateway(redis_url) as first,
        gateway(redis_url) as second,
        client(first) as a,
        client(second) as b,
    ):
        for http in (a, b, a):
            assert http.get("/v1/jobs/nope", headers=WRONG).status_code == 401
        assert b.get("/v1/jobs/nope", headers=valid).status_code == 429


def test_valid_requests_leave_no_trace_and_a_success_does_not_reset_failures(
    redis_url: str, valid: dict[str, str], rclient: redis.Redis
) -> None:
    with gateway(redis_url) as url, client(url) as http:
        for _ in range(5):
            assert http.get("/v1/jobs/nope", headers=valid).status_code == 404
        assert rclient.keys("ragrelay:authfail:*") == []
        assert http.get("/v1/jobs/nope", headers=WRONG).status_code == 401
        assert http.get("/v1/jobs/nope", headers=valid).status_code == 404
        assert http.get("/v1/jobs/nope", headers=WRONG).status_code == 401
        assert http.get("/v1/jobs/nope", headers=WRONG).status_code == 401
        assert http.get("/v1/jobs/nope", headers=WRONG).status_code == 429


def test_serve_behind_a_trusted_proxy_limits_the_forwarded_address(
    redis_url: str, valid: dict[str, str], base_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = dict(
        base_env,
        RAGRELAY_REDIS_URL=redis_url,
        RAGRELAY_GATEWAY_AUTH_FAILURE_BURST="3",
        RAGRELAY_GATEWAY_REQUIRE_WORKERS="false",
    )
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ragrelay.cli.gateway import serve; serve()",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--forwarded-allow-ips",
                "127.0.0.1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            with client(f"http://127.0.0.1:{port}") as proxy:  # the trusted proxy's address
                attacker = {"X-Forwarded-For": "203.0.113.7"}
                for _ in range(3):
                    resp = proxy.get("/v1/jobs/nope", headers={**WRONG, **attacker})
                    assert resp.status_code == 401
                assert proxy.get("/v1/jobs/nope", headers={**valid, **attacker}).status_code == 429
                neighbour = {**valid, "X-Forwarded-For": "203.0.113.8"}
                assert proxy.get("/v1/jobs/nope", headers=neighbour).status_code == 404
            with client(f"http://127.0.0.1:{port}", "127.0.0.2") as untrusted:
                # Not a trusted proxy: its X-Forwarded-For is ignored, its own address counts.
                spoof = {**valid, "X-Forwarded-For": "203.0.113.8"}
                assert untrusted.get("/v1/jobs/nope", headers=spoof).status_code == 404
                for _ in range(3):
                    resp = untrusted.get("/v1/jobs/nope", headers={**WRONG, **attacker})
                    assert resp.status_code == 401
                assert untrusted.get("/v1/jobs/nope", headers=spoof).status_code == 429
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def test_the_failure_bucket_refuses_below_one_token_and_refills(
    redis_url: str, rclient: redis.Redis
) -> None:
    async def run() -> list[tuple[bool, int]]:
        aclient = aioredis.Redis.from_url(redis_url)
        bucket = FailureBucket(aclient, per_min=600.0, burst=2)  # 10 a second
        try:
            seen = [await bucket.check("a")]
            assert rclient.exists(bucket.key("a")) == 0  # looking writes nothing
            seen += [await bucket.fail("a"), await bucket.fail("a"), await bucket.check("a")]
            await asyncio.sleep(0.12)  # 1.2 tokens' worth
            seen += [await bucket.check("a"), await bucket.check("b")]
            return [(d.allowed, d.retry_after_s) for d in seen]
        finally:
            await aclient.aclose()

    assert asyncio.run(run()) == [
        (True, 0),
        (True, 0),
        (False, 1),
        (False, 1),
        (True, 0),
        (True, 0),
    ]

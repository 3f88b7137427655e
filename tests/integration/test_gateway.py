"""The HTTP gateway on a real redis-server, in process: auth, tenancy, limits, errors, CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from click.testing import CliRunner
from fastapi.testclient import TestClient

from bus.errors import ConfigError
from bus.heartbeat import Heartbeat
from bus.keys import Keys
from bus.settings import Settings
from orchestrator.jobs import JobStore
from ragrelay.cli.gateway import keys
from ragrelay.cli.observe import feedback
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import KEY_PREFIX, ApiKeyStore, hash_key
from ragrelay.gateway.ratelimit import TokenBucket
from ragrelay.gateway.readiness import live_orchestrators
from schemas import JobResult
from workers.context import RedisUserContext

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(redis_url: str, tmp_path: object) -> Settings:
    return Settings(redis_url=redis_url)


@pytest.fixture
def api_keys(rclient: redis.Redis) -> ApiKeyStore:
    return ApiKeyStore(rclient)


def client_for(settings: Settings, **config: object) -> TestClient:
    cfg = GatewayConfig(**{"rate_per_s": 1000.0, "burst": 1000, **config})  # type: ignore[arg-type]
    return TestClient(create_app(settings, cfg), raise_server_exceptions=False)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def acme(api_keys: ApiKeyStore) -> dict[str, str]:
    return bearer(api_keys.create("acme")[1])


@pytest.fixture
def globex(api_keys: ApiKeyStore) -> dict[str, str]:
    return bearer(api_keys.create("globex")[1])


def finish(rclient: redis.Redis, job_id: str, tenant: str, answer: str = "42") -> JobResult:
    """Write a final result as the orchestrator would (no workers in this module)."""
    result = JobResult(
        job_id=job_id, tenant=tenant, status="succeeded", answer=answer, stop_reason="accepted"
    )
    rclient.set(Keys().result(job_id), result.to_json())
    return result


# -- authentication -----------------------------------------------------------------------------
def test_every_v1_route_needs_a_key_and_health_metrics_do_not(client: TestClient) -> None:
    for method, path in [
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/abc"),
        ("GET", "/v1/jobs/abc/events"),
        ("POST", "/v1/jobs/abc/feedback"),
        ("PUT", "/v1/users/u1/context"),
        ("GET", "/v1/users/u1/context"),
    ]:
        resp = client.request(method, path, json={})
        assert resp.status_code == 401, (method, path, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/healthz").json() == {"status": "ok"}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and "python_info" in metrics.text
    assert (
        'ragrelay_gateway_requests_total{method="GET",route="/v1/jobs/{job_id}",status="401"}'
        in metrics.text
    )


def test_wrong_malformed_and_revoked_keys_get_401(
    client: TestClient, api_keys: ApiKeyStore
) -> None:
    record, key = api_keys.create("acme")
    assert client.post("/v1/jobs", json={"query": "q"}, headers=bearer(key)).status_code == 202
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "nonsense", ""):
        assert client.post("/v1/jobs", json={"query": "q"}, headers=bearer(bad)).status_code == 401
    assert (
        client.post(
            "/v1/jobs", json={"query": "q"}, headers={"Authorization": f"Basic {key}"}
        ).status_code
        == 401
    )
    api_keys.revoke(record.key_id)
    resp = client.post("/v1/jobs", json={"query": "q"}, headers=bearer(key))
    assert resp.status_code == 401 and resp.json()["detail"] == "invalid or revoked API key"


def test_keys_are_stored_only_as_hashes(api_keys: ApiKeyStore, rclient: redis.Redis) -> None:
    record, key = api_keys.create("acme", "ci")
    dump = b"".join(
        k + json.dumps({kk.decode(): vv.decode() for kk, vv in rclient.hgetall(k).items()}).encode()
        if rclient.type(k) == b"hash"
        else k + (rclient.dump(k) or b"")
        for k in rclient.keys("*")
    )
    assert key.encode() not in dump
    # the secret follows the key id; token_urlsafe may itself hold "_", so split once from the left
    secret = key.removeprefix(KEY_PREFIX).split("_", 1)[1]
    assert len(secret) >= 40 and secret.encode() not in dump
    assert hash_key(key).encode() in dump
    assert api_keys.authenticate(key) == record


# -- jobs and tenancy ---------------------------------------------------------------------------
def test_submit_returns_202_with_links_and_the_tenant_of_the_key(
    client: TestClient, acme: dict[str, str], rclient: redis.Redis
) -> None:
    resp = client.post(
        "/v1/jobs",
        json={"query": "What is ragrelay?", "user_id": "u1", "budget": {"max_iterations": 2}},
        headers=acme,
    )
    assert resp.status_code == 202, resp.text
    body = resp.json()
    job_id = body["job_id"]
    assert body["created"] is True and body["status"] == "running"
    assert body["links"] == {
        "self": f"/v1/jobs/{job_id}",
        "events": f"/v1/jobs/{job_id}/events",
        "feedback": f"/v1/jobs/{job_id}/feedback",
    }
    assert resp.headers["location"] == f"/v1/jobs/{job_id}"
    loaded = JobStore(rclient, Keys()).load(job_id)
    assert loaded is not None
    state, _ = loaded
    assert state.request.tenant == "acme" and state.request.budget.max_iterations == 2
    view = client.get(f"/v1/jobs/{job_id}", headers=acme).json()
    assert view["status"] == "running" and view["result"] is None and view["tenant"] == "acme"


def test_the_tenant_cannot_be_chosen_in_the_body(client: TestClient, acme: dict[str, str]) -> None:
    resp = client.post("/v1/jobs", json={"query": "q", "tenant": "globex"}, headers=acme)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "body.tenant"


def test_same_idempotency_key_returns_the_same_job_per_tenant(
    client: TestClient, acme: dict[str, str], globex: dict[str, str]
) -> None:
    first = client.post("/v1/jobs", json={"query": "q"}, headers={**acme, "Idempotency-Key": "k1"})
    again = client.post("/v1/jobs", json={"query": "q"}, headers={**acme, "Idempotency-Key": "k1"})
    body_key = client.post("/v1/jobs", json={"query": "q", "idempotency_key": "k1"}, headers=acme)
    other = client.post(
        "/v1/jobs", json={"query": "q"}, headers={**globex, "Idempotency-Key": "k1"}
    )
    assert first.status_code == again.status_code == 202
    assert first.json()["created"] is True and again.json()["created"] is False
    assert first.json()["job_id"] == again.json()["job_id"] == body_key.json()["job_id"]
    assert other.json()["job_id"] != first.json()["job_id"]  # keys are per tenant
    clash = client.post(
        "/v1/jobs",
        json={"query": "q", "idempotency_key": "k2"},
        headers={**acme, "Idempotency-Key": "k3"},
    )
    assert clash.status_code == 422


def test_another_tenants_job_events_and_feedback_are_forbidden(
    client: TestClient, acme: dict[str, str], globex: dict[str, str], rclient: redis.Redis
) -> None:
    job_id = client.post("/v1/jobs", json={"query": "q"}, headers=acme).json()["job_id"]
    finish(rclient, job_id, "acme")
    assert client.get(f"/v1/jobs/{job_id}", headers=globex).status_code == 403
    assert client.get(f"/v1/jobs/{job_id}/events", headers=globex).status_code == 403
    resp = client.post(f"/v1/jobs/{job_id}/feedback", json={"rating": 1}, headers=globex)
    assert resp.status_code == 403
    assert rclient.exists(f"ragrelay:feedback:job:{job_id}") == 0
    assert client.get("/v1/jobs/nosuchjob", headers=globex).status_code == 404
    assert client.get(f"/v1/jobs/{job_id}", headers=acme).json()["result"]["answer"] == "42"


def test_events_of_a_finished_job_replay_the_trace_then_the_result_and_resume(
    client: TestClient, acme: dict[str, str], rclient: redis.Redis
) -> None:
    job_id = client.post("/v1/jobs", json={"query": "q"}, headers=acme).json()["job_id"]
    rclient.xadd(
        Keys().trace(job_id),
        {
            "event": json.dumps(
                {"job_id": job_id, "type": "job.finished", "at": 1.0, "outcome": "succeeded"}
            )
        },
    )
    finish(rclient, job_id, "acme", answer="line one\nline two")
    resp = client.get(f"/v1/jobs/{job_id}/events", headers=acme)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    frames = parse_sse(resp.text)
    assert [f.get("event") for f in frames] == ["job.submitted", "job.finished", "result"]
    ids = [f["id"] for f in frames[:2]]
    assert all(
        i == e
        for i, e in zip(
            ids, [eid.decode() for eid, _ in rclient.xrange(Keys().trace(job_id))], strict=True
        )
    )
    assert json.loads(frames[-1]["data"])["answer"] == "line one\nline two"
    resumed = parse_sse(
        client.get(f"/v1/jobs/{job_id}/events", headers={**acme, "Last-Event-ID": ids[0]}).text
    )
    assert [f.get("event") for f in resumed] == ["job.finished", "result"]
    bad = client.get(f"/v1/jobs/{job_id}/events", headers={**acme, "Last-Event-ID": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "header.Last-Event-ID"


def parse_sse(text: str) -> list[dict[str, str]]:
    frames = []
    for block in text.split("\n\n"):
        frame: dict[str, str] = {}
        data: list[str] = []
        for line in block.split("\n"):
            if not line or line.startswith(":") or line.startswith("retry:"):
                continue
            name, _, value = line.partition(": ")
            if name == "data":
                data.append(value)
            else:
                frame[name] = value
        if data:
            frame["data"] = "\n".join(data)
        if frame:
            frames.append(frame)
    return frames


# -- feedback and user context ------------------------------------------------------------------
def test_feedback_is_stored_with_a_snapshot_and_exported_as_an_eval_case(
    client: TestClient, acme: dict[str, str], rclient: redis.Redis, settings: Settings
) -> None:
    job_id = client.post("/v1/jobs", json={"query": "How are retries done?"}, headers=acme).json()[
        "job_id"
    ]
    finish(rclient, job_id, "acme", answer="They are not.")
    resp = client.post(
        f"/v1/jobs/{job_id}/feedback",
        headers=acme,
        json={"rating": 2, "comment": "wrong", "corrected_answer": "With exponential backoff."},
    )
    assert resp.status_code == 201 and resp.json()["job_id"] == job_id
    bad = client.post(f"/v1/jobs/{job_id}/feedback", headers=acme, json={"rating": 9})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.rating"
    out = CliRunner().invoke(feedback, ["export", "--tenant", "acme"], obj=settings)
    assert out.exit_code == 0, out.output
    case = json.loads(out.stdout.strip().splitlines()[-1])
    assert case["question"] == "How are retries done?" and case["job_answer"] == "They are not."
    assert case["answers"] == ["With exponential backoff."] and case["rating"] == 2
    other = CliRunner().invoke(feedback, ["export", "--tenant", "globex"], obj=settings)
    assert other.stdout.strip() == ""


def test_user_context_is_written_as_the_worker_reads_it_and_stays_in_its_tenant(
    client: TestClient, acme: dict[str, str], globex: dict[str, str], rclient: redis.Redis
) -> None:
    ctx = {"city": "Leeds", "plan": "pro", "open_tickets": [1, 2]}
    resp = client.put("/v1/users/u-7/context", json=ctx, headers=acme)
    assert resp.status_code == 200 and resp.json() == {"user_id": "u-7", "context": ctx}
    reader = RedisUserContext(rclient, Keys())
    assert reader.get("acme", "u-7") == ctx
    assert reader.get("globex", "u-7") is None
    assert client.get("/v1/users/u-7/context", headers=globex).status_code == 404
    client.put("/v1/users/u-7/context", json={"city": "Bonn"}, headers=globex)
    assert reader.get("acme", "u-7") == ctx and reader.get("globex", "u-7") == {"city": "Bonn"}
    assert client.get("/v1/users/u-7/context", headers=acme).json()["context"] == ctx
    assert client.put("/v1/users/u-7/context", json=[1, 2], headers=acme).status_code == 422


# -- limits and errors --------------------------------------------------------------------------
def test_rate_limit_per_tenant_answers_429_with_retry_after(
    settings: Settings, api_keys: ApiKeyStore
) -> None:
    a = bearer(api_keys.create("acme")[1])
    g = bearer(api_keys.create("globex")[1])
    with client_for(settings, rate_per_s=0.5, burst=3) as c:
        codes = [c.get("/v1/jobs/nope", headers=a).status_code for _ in range(4)]
        limited = c.get("/v1/jobs/nope", headers=a)
        other = c.get("/v1/jobs/nope", headers=g)
    assert codes == [404, 404, 404, 429]
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert other.status_code == 404  # another tenant has its own bucket


def test_token_bucket_refills_at_its_rate(rclient: redis.Redis) -> None:
    bucket = TokenBucket(rclient, rate_per_s=20.0, burst=2)
    assert [bucket.take("t").allowed for _ in range(3)] == [True, True, False]
    time.sleep(0.12)  # 2.4 tokens' worth, capped at the burst of 2
    assert [bucket.take("t").allowed for _ in range(3)] == [True, True, False]


def test_body_over_the_limit_gets_413_declared_or_streamed(
    settings: Settings, acme: dict[str, str]
) -> None:
    big = json.dumps({"query": "x" * 5000}).encode()
    with client_for(settings, max_body_bytes=4096) as c:
        declared = c.post(
            "/v1/jobs", content=big, headers={**acme, "Content-Type": "application/json"}
        )
        streamed = c.post(
            "/v1/jobs",
            content=iter([big[:3000], big[3000:]]),
            headers={**acme, "Content-Type": "application/json"},
        )
        small = c.post("/v1/jobs", json={"query": "ok"}, headers=acme)
    assert declared.status_code == 413 and "4096" in declared.json()["detail"]
    assert streamed.status_code == 413
    assert small.status_code == 202


def test_validation_errors_name_the_field(client: TestClient, acme: dict[str, str]) -> None:
    missing = client.post("/v1/jobs", json={}, headers=acme)
    assert missing.status_code == 422
    assert {"field": "body.query", "message": "Field required"} in missing.json()["errors"]
    blank = client.post("/v1/jobs", json={"query": "   "}, headers=acme)
    assert blank.status_code == 422 and blank.json()["errors"][0]["field"] == "body.query"
    assert "blank" in blank.json()["detail"]
    budget = client.post(
        "/v1/jobs", json={"query": "q", "budget": {"max_iterations": 0}}, headers=acme
    )
    assert budget.json()["errors"][0]["field"] == "body.budget.max_iterations"
    garbage = client.post(
        "/v1/jobs", content=b"{not json", headers={**acme, "Content-Type": "application/json"}
    )
    assert garbage.status_code == 422


def test_an_internal_error_is_a_500_without_a_stack_trace(
    client: TestClient, acme: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = client.app.state.services  # type: ignore[attr-defined]

    def boom(job_id: str) -> None:
        raise RuntimeError("secret internals at /srv/app.py line 3")

    monkeypatch.setattr(svc.jobs, "load", boom)
    resp = client.get("/v1/jobs/abc", headers=acme)
    assert resp.status_code == 500
    assert resp.json()["detail"].startswith("internal error (reference ")
    assert "Traceback" not in resp.text and "secret" not in resp.text


def test_redis_down_is_a_503_not_a_stack_trace(acme: dict[str, str]) -> None:
    from tests.support.redis_server import free_port

    dead = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with client_for(dead) as c:
        resp = c.get("/v1/jobs/abc", headers=acme)
        ready = c.get("/readyz")
    assert resp.status_code == 503 and "Traceback" not in resp.text
    assert ready.status_code == 503 and ready.json()["checks"]["problems"] == ["redis unreachable"]


def test_readyz_fails_without_an_orchestrator(client: TestClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["problems"] == [
        "no orchestrator read the events stream in the last 30 s"
    ]


def test_readyz_reads_the_heartbeats_the_workers_write(
    client: TestClient, rclient: redis.Redis
) -> None:
    """A live worker's beat is reported; one that died without stopping makes it not ready;
    one that stopped (and removed its beat) is simply gone."""
    keys = Keys()
    live = Heartbeat(
        None,
        5.0,
        redis_client=rclient,
        redis_key=keys.heartbeat("analysis:h-1"),
        registry_key=keys.heartbeats(),
    )
    live.beat()
    rclient.hset(keys.heartbeats(), keys.heartbeat("retrieval:h-2"), repr(time.time() - 90))
    stopped = Heartbeat(
        None,
        5.0,
        redis_client=rclient,
        redis_key=keys.heartbeat("generation:h-3"),
        registry_key=keys.heartbeats(),
    )
    stopped.beat()
    stopped.stop()
    checks = client.get("/readyz").json()["checks"]
    assert set(checks["heartbeats_age_s"]) == {"analysis", "retrieval"}
    assert checks["heartbeats_age_s"]["analysis"] < 30
    assert "retrieval: heartbeat 90 s old" in checks["problems"]
    assert 0 < rclient.ttl(keys.heartbeats()) <= 3600  # the registry does not live forever


def test_embedded_settings_are_refused_with_a_clear_message(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="RAGRELAY_REDIS_URL"):
        create_app(Settings(redis_url=None))


# -- the keys CLI -------------------------------------------------------------------------------
def test_keys_cli_creates_lists_and_revokes(settings: Settings, api_keys: ApiKeyStore) -> None:
    runner = CliRunner()
    created = runner.invoke(keys, ["create", "--tenant", "acme", "--name", "ci"], obj=settings)
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    record = api_keys.authenticate(key)
    assert record is not None and record.tenant == "acme" and record.name == "ci"
    listed = runner.invoke(keys, ["list", "--json"], obj=settings)
    rows = [json.loads(line) for line in listed.output.strip().splitlines()]
    assert rows == [
        {"key_id": record.key_id, "tenant": "acme", "name": "ci", "created_at": record.created_at}
    ]
    assert key not in listed.output
    revoked = runner.invoke(keys, ["revoke", record.key_id], obj=settings)
    assert revoked.exit_code == 0 and api_keys.authenticate(key) is None
    again = runner.invoke(keys, ["revoke", record.key_id], obj=settings)
    assert again.exit_code == 1 and f"no key {record.key_id}" in again.output
    bad = runner.invoke(keys, ["create", "--tenant", "no spaces"], obj=settings)
    assert bad.exit_code != 0 and "invalid tenant" in str(bad.exception or bad.output)


def test_keys_cli_without_redis_says_what_to_set() -> None:
    out = CliRunner().invoke(keys, ["list"], obj=Settings(redis_url=None))
    assert isinstance(out.exception, ConfigError)
    assert "RAGRELAY_REDIS_URL" in str(out.exception)


def test_an_orchestrator_blocked_reading_events_counts_as_live_even_when_idle(
    rclient: redis.Redis, redis_url: str
) -> None:
    keys = Keys()
    assert live_orchestrators(rclient, keys, 30) == 0
    rclient.xgroup_create(keys.events, "orchestrator", id="0", mkstream=True)
    reader = redis.Redis.from_url(redis_url)
    stop = threading.Event()

    def read() -> None:  # what the engine does: block 0.5 s at a time, nothing arrives
        while not stop.is_set():
            reader.xreadgroup("orchestrator", "c1", {keys.events: ">"}, count=10, block=500)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        time.sleep(1.2)
        assert live_orchestrators(rclient, keys, 30) == 1
    finally:
        stop.set()
        thread.join(timeout=5)
        reader.close()


# -- nothing is stored that cannot be read back (issue: the probe's poison job) -------------------
POISON_BODIES = [
    '{"query": "x", "budget": {"max_cost_usd": 1e400}}',
    '{"query": "x", "budget": {"max_cost_usd": Infinity}}',
    '{"query": "x", "budget": {"deadline_s": NaN}}',
    '{"query": "x", "budget": {"max_iterations": "3"}}',
    '{"query": "x", "budget": {"max_iterations": true}}',
    '{"query": "x", "metadata": {"n": -Infinity}}',
    '{"query": "x", "metadata": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}",
    '{"query": "x", "metadata": {"blob": "' + "x" * 250_000 + '"}}',
]


@pytest.mark.parametrize("body", POISON_BODIES, ids=range(len(POISON_BODIES)))
def test_a_request_that_could_not_be_read_back_is_refused_before_anything_is_stored(
    client: TestClient,
    acme: dict[str, str],
    rclient: redis.Redis,
    body: str,
) -> None:
    resp = client.post(
        "/v1/jobs", content=body, headers={**acme, "Content-Type": "application/json"}
    )
    assert resp.status_code in (413, 422), resp.text
    assert resp.json()["detail"]
    assert not list(rclient.scan_iter("ragrelay:job:*"))
    assert not rclient.exists(Keys().events) or rclient.xlen(Keys().events) == 0


@pytest.mark.parametrize("depth", [33, 900])
def test_deep_user_context_is_refused_and_never_stored(
    client: TestClient,
    acme: dict[str, str],
    rclient: redis.Redis,
    depth: int,
) -> None:
    body = '{"a": ' * depth + "1" + "}" * depth
    resp = client.put(
        "/v1/users/u1/context", content=body, headers={**acme, "Content-Type": "application/json"}
    )
    assert resp.status_code == 422, resp.text
    assert "nested deeper than" in resp.text
    assert not rclient.exists(Keys().user_context("acme", "u1"))
    assert client.get("/v1/users/u1/context", headers=acme).status_code == 404


def test_an_unreadable_stored_user_context_is_a_clear_409_not_a_500(
    client: TestClient,
    acme: dict[str, str],
    rclient: redis.Redis,
) -> None:
    rclient.set(Keys().user_context("acme", "u1"), '{"a": ' * 900 + "1" + "}" * 900)
    resp = client.get("/v1/users/u1/context", headers=acme)
    assert resp.status_code == 409 and "PUT a new one" in resp.json()["detail"]


def test_a_broken_job_is_quarantined_for_its_owner_and_refused_to_others(
    client: TestClient,
    acme: dict[str, str],
    globex: dict[str, str],
    rclient: redis.Redis,
) -> None:
    job_id = client.post("/v1/jobs", json={"query": "q"}, headers=acme).json()["job_id"]
    rclient.hset(Keys().job(job_id), "state", "null")  # what the probe's job looked like
    assert client.get(f"/v1/jobs/{job_id}", headers=globex).status_code == 403
    assert client.get(f"/v1/jobs/{job_id}/events", headers=globex).status_code == 403
    resp = client.get(f"/v1/jobs/{job_id}", headers=acme)
    assert resp.status_code == 200, resp.text
    result = resp.json()["result"]
    assert result["status"] == "failed" and result["stop_reason"] == "quarantined"
    assert "could not be read" in result["error"]
    assert not rclient.zscore(Keys().running, job_id)


def test_idempotency_key_reused_with_another_body_is_409_naming_the_first_job(
    client: TestClient,
    acme: dict[str, str],
) -> None:
    headers = {**acme, "Idempotency-Key": "order-1"}
    first = client.post("/v1/jobs", json={"query": "q"}, headers=headers)
    same = client.post("/v1/jobs", json={"query": "q"}, headers=headers)
    assert first.status_code == same.status_code == 202
    assert same.json()["job_id"] == first.json()["job_id"] and not same.json()["created"]
    other = client.post("/v1/jobs", json={"query": "another"}, headers=headers)
    assert other.status_code == 409, other.text
    assert other.json()["job_id"] == first.json()["job_id"]
    assert other.headers["location"] == f"/v1/jobs/{first.json()['job_id']}"


@pytest.mark.parametrize("rating", ["5", 4.0, True, 1e400])
def test_feedback_ratings_are_strict_numbers(
    client: TestClient,
    acme: dict[str, str],
    rclient: redis.Redis,
    rating: object,
) -> None:
    job_id = client.post("/v1/jobs", json={"query": "q"}, headers=acme).json()["job_id"]
    finish(rclient, job_id, "acme")
    body = json.dumps({"rating": rating}) if rating != 1e400 else '{"rating": 1e400}'
    resp = client.post(
        f"/v1/jobs/{job_id}/feedback",
        content=body,
        headers={**acme, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == "body.rating"


# -- issue 22: what a newcomer's first requests are told ------------------------------------------


def test_malformed_json_is_named_as_json_syntax_at_its_position(
    client: TestClient, acme: dict[str, str]
) -> None:
    resp = client.post(
        "/v1/jobs",
        content=b'{"query": "q",, }',
        headers={**acme, "Content-Type": "application/json"},
    )
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    assert error["field"] == "body"  # not "body.14": a character offset is not a field
    assert error["message"].startswith("malformed JSON at character 14")
    assert "malformed JSON at character 14" in resp.json()["detail"]


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_body_without_the_json_content_type_names_the_header(
    client: TestClient, acme: dict[str, str], content_type: str | None
) -> None:
    headers = {**acme, **({"Content-Type": content_type} if content_type else {})}
    resp = client.post("/v1/jobs", content=b'{"query": "q"}', headers=headers)
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    assert error["field"] == "header.Content-Type"
    assert "'Content-Type: application/json'" in error["message"]
    assert (repr(content_type) if content_type else "no Content-Type") in error["message"]
    assert "valid dictionary" not in resp.text


def test_a_finished_jobs_result_carries_its_trace(
    client: TestClient, acme: dict[str, str], rclient: redis.Redis
) -> None:
    job_id = client.post("/v1/jobs", json={"query": "q"}, headers=acme).json()["job_id"]
    finish(rclient, job_id, "acme")
    body = client.get(f"/v1/jobs/{job_id}", headers=acme).json()
    trace = body["result"]["trace"]
    assert trace and trace[0]["type"] == "job.submitted" and trace[0]["job_id"] == job_id

"""Scenario 12: a two-tenant burst with poisoned submissions of every kind mixed in.

The security probe's finding: one request whose budget held ``1e400`` was stored as a job the
orchestrator could never load, and it stalled every tenant (41 of 300 jobs finished). Here
the same burst runs through the HTTP gateway (in process) and the Celery ingress against a
real cluster (orchestrator and one worker per stage, each its own process), with poison of
every class mixed in while it runs:

* HTTP bodies no reader could load back (1e400, Infinity, NaN, strings and booleans for
  numbers, metadata 500 deep or 250 KB, user context 900 deep): refused with 413/422,
  nothing stored;
* an Idempotency-Key reused with another body: 409 naming the first job;
* the same poison through ``send_task("ragrelay.submit")``: a failed result naming the field;
* records written straight into Redis by a broken writer (a job whose state reads back as
  the probe's did, junk on the events stream, running-set entries with no job): quarantined
  or dead-lettered, acknowledged, and never in the way.

Every valid job must succeed; the ledger (lost, duplicated effects) covers valid and
quarantined jobs alike.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from fastapi.testclient import TestClient

from bus.events import DeadLetters
from bus.keys import Keys
from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from tests.chaos.helpers import QUESTIONS, close
from tests.chaos.procs import MakeCluster
from tests.chaos.record import ScenarioRecord
from tests.support.cluster import sample_corpus_env

pytestmark = pytest.mark.integration

TENANTS = ("demo", "acme")
HTTP_POISON = [
    '{"query": "q", "budget": {"max_cost_usd": 1e400}}',
    '{"query": "q", "budget": {"max_cost_usd": Infinity}}',
    '{"query": "q", "budget": {"deadline_s": NaN}}',
    '{"query": "q", "budget": {"max_iterations": "3"}}',
    '{"query": "q", "budget": {"max_llm_calls": true}}',
    '{"query": "q", "metadata": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}",
    '{"query": "q", "metadata": {"blob": "' + "x" * 250_000 + '"}}',
]
CELERY_POISON: list[dict[str, Any]] = [
    {"query": "q", "budget": {"max_cost_usd": float("inf")}},
    {"query": "q", "budget": {"deadline_s": float("nan")}},
    {"query": "q", "budget": {"max_iterations": "3"}},
    {"query": "q", "metadata": {"n": float("-inf")}},
]


def run_burst(
    n: int,
    seconds: float,
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    redis_url: str,
    scenario: ScenarioRecord,
) -> None:
    sample_corpus_env(
        Path(chaos_env["RAGRELAY_DATA_DIR"]),
        "acme",
        RAGRELAY_EMBEDDER=chaos_env["RAGRELAY_EMBEDDER"],
    )
    make_cluster(dict(chaos_env, RAGRELAY_STEP_TIMEOUT_S="120")).up()
    keys = Keys()
    api = ApiKeyStore(rclient)
    bearer = {t: {"Authorization": f"Bearer {api.create(t)[1]}"} for t in TENANTS}
    cfg = GatewayConfig(rate_per_s=10_000.0, burst=10_000)
    celery = Celery(broker=redis_url)
    valid: list[str] = []
    quarantined: list[str] = []
    celery_poison: list[str] = []
    conflicts: list[str] = []  # an idempotency key reused over Celery with another request
    refused: Counter[int] = Counter()
    stop = threading.Event()

    def broken_writer() -> None:
        """Junk a broken writer might leave on the stream and in the running set."""
        i = 0
        while not stop.is_set():
            rclient.xadd(keys.events, {"event": f"{{not json {i}"})
            rclient.xadd(keys.events, {"unexpected": "field"})
            rclient.zadd(
                keys.running, {f"ghost-{i}": time.time() - 1 if i % 2 else time.time() + 3600}
            )
            i += 1
            stop.wait(0.5)

    writer = threading.Thread(target=broken_writer, daemon=True)
    settings = Settings(redis_url=redis_url, result_ttl_s=int(chaos_env["RAGRELAY_RESULT_TTL_S"]))
    with TestClient(create_app(settings, cfg), raise_server_exceptions=False) as http:
        writer.start()
        started = time.monotonic()
        for i in range(n):
            tenant = TENANTS[i % 2]
            resp = http.post(
                "/v1/jobs",
                headers=bearer[tenant],
                json={
                    "query": QUESTIONS[i % len(QUESTIONS)],
                    "idempotency_key": f"burst-{i}",
                    "budget": {"max_iterations": 1, "deadline_s": 600},
                },
            )
            assert resp.status_code == 202, resp.text
            job_id = resp.json()["job_id"]
            if i % 25 == 7:
                # the probe's record (state null), written by something other than ragrelay;
                # the version too, so an orchestrator commit racing this write cannot undo it
                rclient.hset(keys.job(job_id), mapping={"state": "null", "version": "x"})
                quarantined.append(job_id)
            else:
                valid.append(job_id)
            if i % 10 == 3:
                body = HTTP_POISON[(i // 10) % len(HTTP_POISON)]
                bad = http.post(
                    "/v1/jobs",
                    content=body,
                    headers={**bearer[tenant], "Content-Type": "application/json"},
                )
                refused[bad.status_code] += 1
                deep = '{"a": ' * 900 + "1" + "}" * 900
                bad = http.put(
                    "/v1/users/u1/context",
                    content=deep,
                    headers={**bearer[tenant], "Content-Type": "application/json"},
                )
                refused[bad.status_code] += 1
                again = http.post(
                    "/v1/jobs",
                    headers=bearer[tenant],
                    json={"query": "a different question", "idempotency_key": f"burst-{i}"},
                )
                refused[again.status_code] += 1
                assert again.json()["job_id"] == job_id
            if i % 20 == 5:
                poison = CELERY_POISON[(i // 20) % len(CELERY_POISON)]
                celery_poison.append(
                    celery.send_task("ragrelay.submit", args=[poison], queue="orchestrator").id
                )
                conflicts.append(
                    celery.send_task(
                        "ragrelay.submit",
                        queue="orchestrator",
                        args=[
                            {
                                "query": "another question",
                                "tenant": tenant,
                                "idempotency_key": f"burst-{i}",
                            }
                        ],
                    ).id
                )
            time.sleep(max(0.0, started + seconds * (i + 1) / n - time.monotonic()))
        scenario.figures["submit_s"] = round(time.monotonic() - started, 1)
        stop.set()
        writer.join(timeout=5)
        assert not list(rclient.scan_iter(match=keys.user_context("*", "*")))

    every = valid + quarantined + celery_poison + conflicts
    close(rclient, scenario, every, timeout_s=240)
    results = {j: json.loads(rclient.get(keys.result(j)) or b"{}") for j in every}
    assert {results[j]["status"] for j in valid} == {"succeeded"}
    assert {results[j]["stop_reason"] for j in quarantined} <= {"quarantined"}
    assert {results[j]["stop_reason"] for j in celery_poison} == {"invalid_request"}
    assert {results[j]["stop_reason"] for j in conflicts} == {"idempotency_conflict"}
    assert all("already names job" in results[j]["error"] for j in conflicts)
    assert set(refused) <= {409, 413, 422}, refused
    letters = DeadLetters(rclient, keys).list(count=100_000)
    kinds = Counter(d["kind"] for d in letters)
    assert kinds["corrupt_job"] == len(quarantined)
    time.sleep(1.0)  # the orchestrator has read the writer's last entries
    pending: Any = rclient.xpending(keys.events, "orchestrator")
    assert int(pending["pending"]) == 0
    ghosts = [m for m in rclient.zrange(keys.running, 0, -1) if m.startswith(b"ghost-")]
    assert len(ghosts) <= 2  # what the last sweep had not yet reached
    scenario.figures.update(
        valid=len(valid),
        quarantined=len(quarantined),
        celery_poison=len(celery_poison),
        conflicts=len(conflicts),
        http_refused=dict(sorted((str(k), v) for k, v in refused.items())),
        dead_letters=dict(kinds),
        ghosts_left=len(ghosts),
    )
    scenario.dead_lettered = len(letters)


def test_poisoned_submissions_never_stall_other_tenants(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    redis_url: str,
    scenario: ScenarioRecord,
) -> None:
    run_burst(40, 6.0, chaos_env, make_cluster, rclient, redis_url, scenario)


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_a_300_job_two_tenant_burst_with_poison_mixed_in_finishes_every_valid_job(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    redis_url: str,
    scenario: ScenarioRecord,
) -> None:
    run_burst(300, 30.0, chaos_env, make_cluster, rclient, redis_url, scenario)

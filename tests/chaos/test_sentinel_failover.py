"""Scenario: Redis behind Sentinel (a primary, a replica, three Sentinels on loopback); the
primary is SIGKILLed under load, the Sentinels promote the replica, and every process
(orchestrator, four workers) carries on through redis+sentinel:// without a restart.

Replication is asynchronous: a write the primary acknowledged but had not yet sent to the
replica is gone after the promotion. The figures say how many submitted jobs that touched
(``jobs_missing_after_failover``: no record and no result on the new primary) and how the
rest recovered (the sweeper re-sends steps whose task or result event was lost; steps are
idempotent). Jobs are submitted at a steady pace across the kill; with
``RAGRELAY_REDIS_WAIT_REPLICAS=1`` a submission returns only once a replica holds the new job
(``WAIT``), so an acknowledged job cannot vanish this way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bus.keys import Keys
from bus.redis import client_for_url
from orchestrator.jobs import JobStore
from schemas import Budget, JobRequest
from tests.chaos.helpers import QUESTIONS, close
from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import ScenarioRecord
from tests.support.sentinel import SentinelSet

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    s = SentinelSet(tmp_path / "sentinel", down_after_ms=1000).start()
    yield s
    s.stop()


def _retrying(fn: object, timeout_s: float = 60.0) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return fn()  # type: ignore[operator]
        except redis.exceptions.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _run(
    n: int,
    chaos_env: dict[str, str],
    sentinels: SentinelSet,
    make_cluster: MakeCluster,
    scenario: ScenarioRecord,
    *,
    wait: int = 1,
    spread_s: float = 4.0,
) -> None:
    env = dict(chaos_env, RAGRELAY_REDIS_URL=sentinels.url, RAGRELAY_REDIS_WAIT_REPLICAS=str(wait))
    client = client_for_url(sentinels.url, socket_timeout=5)
    c: ChaosCluster = make_cluster(env).up()
    store = JobStore(client, Keys(), ttl_s=600, wait_replicas=wait)  # as the ingresses do
    ids: list[str] = []  # acknowledged submissions only

    def submit_all() -> None:
        """Submit at a steady pace across the kill; a failed call is retried with the same
        idempotency key, as a client would, so the id recorded is the one acknowledged."""
        for i in range(n):
            request = JobRequest(
                query=QUESTIONS[i % len(QUESTIONS)],
                tenant="demo",
                idempotency_key=f"sentinel-{i}",
                budget=Budget(deadline_s=900.0),
            )
            ids.append(_retrying(lambda r=request: store.submit(r)[0]))  # type: ignore[misc]
            time.sleep(spread_s / n)

    submitter = threading.Thread(target=submit_all, name="submitter", daemon=True)
    submitter.start()
    time.sleep(spread_s / 2)  # half submitted, jobs in flight in every stage
    old = sentinels.primary_port()
    sentinels.kill(old)
    killed_at = time.monotonic()
    sentinels.wait(lambda: sentinels.primary_port() != old, timeout_s=90)
    promoted_s = time.monotonic() - killed_at
    submitter.join(timeout=300)
    assert len(ids) == n
    keys = Keys()

    def missing() -> int:
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(keys.job(job_id), keys.result(job_id))
        return sum(1 for there in pipe.execute() if not there)

    scenario.figures["jobs_missing_after_failover"] = _retrying(missing)
    report = _retrying(lambda: close(client, scenario, ids, timeout_s=240))
    scenario.figures.update(
        promoted_s=round(promoted_s, 1),
        recover_s=round(time.monotonic() - killed_at, 1),
        wait_replicas=wait,
    )
    scenario.kills = 1
    for name, proc in c.procs.items():
        assert proc.poll() is None, f"{name} exited: nobody may need a restart"
    assert "failed" not in report.statuses, report.stop_reasons  # type: ignore[attr-defined]
    client.close()


@pytest.mark.timeout(400)
def test_primary_killed_under_load_replica_promoted_nothing_lost(
    chaos_env: dict[str, str],
    sentinels: SentinelSet,
    make_cluster: MakeCluster,
    scenario: ScenarioRecord,
) -> None:
    _run(30, chaos_env, sentinels, make_cluster, scenario)


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_primary_killed_under_heavy_load_replica_promoted_nothing_lost(
    chaos_env: dict[str, str],
    sentinels: SentinelSet,
    make_cluster: MakeCluster,
    scenario: ScenarioRecord,
) -> None:
    _run(200, chaos_env, sentinels, make_cluster, scenario)

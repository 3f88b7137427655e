"""Redis behind Sentinel (a primary, a replica, three Sentinels on loopback): the whole
pipeline runs on a redis+sentinel:// URL, and keeps running, without a restart, after the
Sentinels switch the primary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from bus.redis import client_for_url
from bus.redis_url import celery_conf_for
from tests.integration.test_pipeline_redis import CORPUS, ragrelay
from tests.support.cluster import Cluster
from tests.support.sentinel import SentinelSet

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    s = SentinelSet(tmp_path / "sentinel").start()
    yield s
    s.stop()


def test_a_client_follows_a_failover_without_being_rebuilt(sentinels: SentinelSet) -> None:
    client = client_for_url(sentinels.url, socket_timeout=2)
    client.set("k", "before")
    first = sentinels.primary_port()
    second = sentinels.failover()
    assert second != first
    deadline = time.monotonic() + 30
    while True:  # the first command after the switch may meet the demoted node
        try:
            client.set("k", "after")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert sentinels.client(second).get("k") == b"after"


@pytest.mark.timeout(300)
def test_the_pipeline_runs_on_sentinel_and_through_a_failover(
    sentinels: SentinelSet, base_env: dict[str, str], tmp_path: Path
) -> None:
    out = ragrelay(base_env, "ingest", str(CORPUS), "--tenant", "demo")
    assert out.returncode == 0, out.stderr
    env = dict(base_env, RAGRELAY_REDIS_URL=sentinels.url, RAGRELAY_LOG_LEVEL="INFO")
    cluster = Cluster(env, tmp_path / "logs").start_all(
        ("analysis", "retrieval", "generation", "evaluation")
    )
    app = Celery("caller", set_as_current=False)
    app.conf.update(celery_conf_for(sentinels.url, result_backend=True))
    try:
        before = app.send_task(
            "ragrelay.submit",
            args=[{"query": "What is a trace?", "tenant": "demo"}],
            queue="orchestrator",
        )
        assert before.get(timeout=90)["status"] == "succeeded"
        sentinels.failover()
        after = app.send_task(
            "ragrelay.submit",
            args=[{"query": "How are errors retried?", "tenant": "demo"}],
            queue="orchestrator",
        )
        assert after.get(timeout=120)["status"] == "succeeded"
        for name, proc in cluster.procs.items():
            assert proc.poll() is None, f"{name} exited"  # nobody was restarted
    finally:
        app.close()
        cluster.stop()

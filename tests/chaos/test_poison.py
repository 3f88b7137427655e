"""Scenario 5: poison messages are dead-lettered with their reason, never redelivered forever.

Poison kinds: bytes that are not JSON, a task from a newer schema version, a task name no
worker knows, a payload that crashes the handler every time, and one that kills the
worker process every time it runs.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from celery import Celery
from kombu import Connection, Producer  # type: ignore[attr-defined]

from tests.chaos.helpers import close, submit, wait_for
from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import ScenarioRecord

pytestmark = pytest.mark.integration


def dead_letters(client: redis.Redis) -> list[dict[str, Any]]:
    from bus.events import DeadLetters
    from bus.keys import Keys

    return DeadLetters(client, Keys()).list(count=1000)


def publish_raw(redis_url: str, queue: str, body: bytes, task: str, task_id: str) -> None:
    """A message whose body does not decode: what a buggy foreign producer might send."""
    with Connection(redis_url) as conn:  # type: ignore[no-untyped-call]
        Producer(conn.channel()).publish(  # type: ignore[no-untyped-call]
            body,
            exchange="",
            routing_key=queue,
            content_type="application/json",
            content_encoding="utf-8",
            headers={
                "task": task,
                "id": task_id,
                "lang": "py",
                "retries": 0,
                "argsrepr": "",
                "kwargsrepr": "",
            },
        )


def stage_task(job_id: str, stage: str = "analysis", **extra: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "step_id": f"{job_id}/1/{stage}/0",
        "tenant": "demo",
        "query": "What is ragrelay?",
        **extra,
    }


@pytest.mark.chaos
def test_crash_every_time_is_dead_lettered_once_and_fails_the_job(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    c: ChaosCluster = make_cluster(dict(chaos_env, RAGRELAY_FAULTS="generation=crash:1000")).up()
    ids = submit(rclient, 2, tag="crash")
    report = close(rclient, scenario, ids, timeout_s=60)
    assert report.stop_reasons == {"step_failed:generation": 2}
    letters = dead_letters(rclient)
    assert len(letters) == 2 and {d["kind"] for d in letters} == {"crash"}
    assert all(
        "handler crashed: RuntimeError: injected crash 1/1000" in d["reason"] for d in letters
    )
    time.sleep(2)  # nothing comes back for another go
    assert all(
        int(rclient.get(f"ragrelay:faults:{d['payload']['step_id']}") or 0) == 1 for d in letters
    )
    assert '"step.retry"' not in c.log("generation")
    scenario.dead_lettered = len(letters)


@pytest.mark.chaos
def test_poison_messages_reach_the_dead_letter_store_with_their_reason(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    redis_url: str,
    scenario: ScenarioRecord,
) -> None:
    c: ChaosCluster = make_cluster(chaos_env).up()
    app = Celery(broker=redis_url)
    # 1. not JSON at all, on a stage queue
    publish_raw(redis_url, "generation", b"{not json", "ragrelay.generation", "poison-bytes")
    # 2. a task from a newer schema version this server does not understand
    app.send_task(
        "ragrelay.analysis",
        args=[stage_task("poison-ver", schema_version=99)],
        queue="analysis",
        task_id="poison-version",
    )
    # 3. a task name no worker knows, on a stage queue
    app.send_task(
        "ragrelay.summarise",
        args=[stage_task("poison-name")],
        queue="evaluation",
        task_id="poison-name",
    )
    app.close()
    expected = {"poison-bytes", "poison-version", "poison-name"}

    def arrived() -> bool:
        return expected <= {d.get("task_id") for d in dead_letters(rclient)}

    try:
        wait_for(arrived, 20, "three poison messages in the dead-letter store")
    finally:
        letters = {d.get("task_id"): d for d in dead_letters(rclient)}
        scenario.dead_lettered = len(letters)
        scenario.figures["dead_letters"] = {k: v.get("reason") for k, v in letters.items()}
        scenario.figures["logs"] = {
            "generation": [ln for ln in c.log("generation").splitlines() if "poison" in ln][:3],
            "evaluation": [ln for ln in c.log("evaluation").splitlines() if "summarise" in ln][:3],
        }
    assert "schema_version 99" in letters["poison-version"]["reason"]
    assert "ragrelay.summarise" in letters["poison-name"]["reason"]
    assert letters["poison-bytes"]["queue"] == "generation"
    # Healthy work still flows afterwards.
    ids = submit(rclient, 2, tag="after-poison")
    close(rclient, scenario, ids, timeout_s=60)


@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_a_task_that_kills_its_worker_every_time_is_not_redelivered_forever(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    # retrieval runs a prefork pool: the child dies, billiard replaces it, and with
    # reject_on_worker_lost the message goes straight back to the queue.
    c: ChaosCluster = make_cluster(dict(chaos_env, RAGRELAY_FAULTS="retrieval=exit:1000000")).up()
    [job_id] = submit(rclient, 1, tag="killer")
    close(rclient, scenario, [job_id], timeout_s=90)  # the job ends (retrieval degraded)
    time.sleep(10)
    counters = {
        k.decode(): int(rclient.get(k) or 0) for k in rclient.scan_iter("ragrelay:faults:*")
    }
    runs = max(counters.values())
    scenario.figures["runs_of_the_poison_step"] = runs
    scenario.dead_lettered = int(rclient.xlen("ragrelay:dlq"))
    scenario.figures["worker_processes_lost"] = c.log("retrieval").count(
        "Task handler raised error: WorkerLostError"
    )
    # A bounded number of deliveries, then the dead-letter store — not an endless loop.
    assert runs <= 10, f"the poison task ran {runs} times and is still being redelivered"
    letters = dead_letters(rclient)
    assert any(d["kind"] == "poison" for d in letters), json.dumps(letters)[:500]

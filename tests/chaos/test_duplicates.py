"""Scenario 4: every task is delivered twice; every step's effect still counts once.

The orchestrator here publishes each task twice (same task id, same payload), as a broker
that redelivers would; each job is also submitted twice with its idempotency key.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from tests.chaos.helpers import close, submit
from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import ScenarioRecord

pytestmark = pytest.mark.integration


def _run(
    n: int,
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
    timeout_s: float,
) -> None:
    c: ChaosCluster = make_cluster(chaos_env).up(dispatch="duplicate")
    ids = submit(rclient, n, tag="dup", deadline_s=900.0)
    again = submit(
        rclient, n, tag="dup", deadline_s=900.0
    )  # the same idempotency keys: the same jobs
    assert again == ids
    report = close(rclient, scenario, ids, timeout_s=timeout_s)
    logs = "".join(c.log(s) for s in ("analysis", "retrieval", "generation", "evaluation"))
    received = logs.count("received")
    skipped = logs.count("step.duplicate_skipped")
    events: Any = rclient.xrange("ragrelay:events")
    results = sum(json.loads(f[b"event"])["type"] == "step.result" for _, f in events)
    scenario.figures.update(
        tasks_received=received,
        duplicates_skipped=skipped,
        step_results=results,
        steps_applied=report.steps_applied,
    )
    # Each applied step was received twice (duplicates really arrived) ...
    assert received >= 2 * report.steps_applied
    # ... and each second copy was either skipped by the worker (already done) or ran and
    # reported a result the orchestrator ignored: no step counted twice.
    assert skipped + (results - report.steps_applied) >= report.steps_applied
    assert report.duplicated_effects == 0
    assert len(rclient.keys("ragrelay:result:*")) == n  # the final result written once per job


def test_every_task_delivered_twice_counts_each_step_once(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(10, chaos_env, make_cluster, rclient, scenario, timeout_s=60)


@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_every_task_delivered_twice_at_volume(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(200, chaos_env, make_cluster, rclient, scenario, timeout_s=240)

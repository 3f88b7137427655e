"""Scenario 2: the orchestrator dies between applying a result and dispatching the next step.

The transition that decided "generation next" is committed, the task never left. Events
the dead replica had read stay pending in the consumer group (reclaimed with XAUTOCLAIM by
the next replica); the undispatched step is overdue and the sweeper re-sends it.
"""

from __future__ import annotations

import time

import pytest
import redis

from tests.chaos.helpers import close, steps, submit, wait_for
from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import ScenarioRecord

pytestmark = pytest.mark.integration


def _run(
    n: int,
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    env = dict(chaos_env, RAGRELAY_STEP_TIMEOUT_S="4")
    c: ChaosCluster = make_cluster(env).up(dispatch="die-before:generation")
    ids = submit(rclient, n, tag="orch", deadline_s=900.0)
    code = c.wait_exit("orchestrator", timeout_s=60)
    died_at = time.monotonic()
    c.kills += 1
    assert code == -9
    # The dead replica left events read but not acknowledged in the group.
    pending = rclient.xpending("ragrelay:events", "orchestrator")["pending"]
    scenario.figures["pending_events_left"] = int(pending)
    c.orchestrator()  # a fresh replica, the production code path
    report = close(rclient, scenario, ids, timeout_s=90)
    scenario.figures["recover_s"] = round(time.monotonic() - died_at, 1)
    scenario.kills = c.kills
    assert "failed" not in report.statuses, report.stop_reasons  # recovered, not failed
    # The generation step that never left was re-sent by the sweeper (attempt 2).
    assert sum(steps(rclient, j, "step.timeout", "generation") for j in ids) >= 1
    wait_for(
        lambda: rclient.xpending("ragrelay:events", "orchestrator")["pending"] == 0,
        30,
        "every event acknowledged",
    )


def test_orchestrator_killed_before_dispatch_recovers(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(3, chaos_env, make_cluster, rclient, scenario)


@pytest.mark.chaos
@pytest.mark.timeout(300)
def test_orchestrator_killed_before_dispatch_with_many_jobs_in_flight(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(100, chaos_env, make_cluster, rclient, scenario)

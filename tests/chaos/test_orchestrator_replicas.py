"""Scenario: three orchestrator replicas share the consumer group; one is SIGKILLed every
few seconds under load and a fresh one started in its place.

Events the killed replica had read stay pending under its consumer name until a survivor
reclaims them (XAUTOCLAIM, idle > step timeout / 4); the compare-and-set commit makes a
transition that the dead replica applied but never acknowledged change nothing the second
time. The ledger must show every job final, none lost, no duplicated effect. The time to
recover, per kill, is from the SIGKILL until the dead consumer has no pending event left.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import redis

from tests.chaos.helpers import close, submit
from tests.chaos.procs import WORKER_STAGES, ChaosCluster, MakeCluster
from tests.chaos.record import ScenarioRecord

pytestmark = pytest.mark.integration

REPLICAS = ("orchestrator-a", "orchestrator-b", "orchestrator-c")
EVENTS = "ragrelay:events"
GROUP = "orchestrator"


def pending_of(client: redis.Redis, consumer: str) -> int:
    summary = client.xpending(EVENTS, GROUP)
    for row in summary.get("consumers") or []:
        name = row["name"].decode() if isinstance(row["name"], bytes) else str(row["name"])
        if name == consumer:
            return int(row["pending"])
    return 0


def _run(
    n: int,
    every_s: float,
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
    *,
    timeout_s: float,
) -> None:
    c: ChaosCluster = make_cluster(chaos_env)
    for role in REPLICAS:
        c.spawn(role, "orchestrator", wait=False)
    for stage in WORKER_STAGES:
        c.worker(stage, wait=False)
    c.wait_ready(timeout=90)
    started = time.monotonic()
    ids = submit(rclient, n, tag="replicas", deadline_s=900.0)
    recover_s: list[float] = []
    left_pending: list[int] = []
    done = threading.Event()
    watcher = redis.Redis(connection_pool=rclient.connection_pool)

    def kill_loop() -> None:
        turn = 0
        while True:  # the first kill at once: the load is on
            role = REPLICAS[turn % len(REPLICAS)]
            turn += 1
            pid = c.procs[c.by_role[role]].pid
            consumer = f"{socket.gethostname()}-{pid}"
            c.signal_role(role)  # SIGKILL, whole group
            killed_at = time.monotonic()
            left_pending.append(pending_of(watcher, consumer))
            c.spawn(role, "orchestrator", wait=False)  # its replacement, as a Deployment would
            while pending_of(watcher, consumer) and time.monotonic() - killed_at < 120:
                time.sleep(0.05)
            recover_s.append(round(time.monotonic() - killed_at, 2))
            if done.wait(every_s):
                return

    killer = threading.Thread(target=kill_loop, name="replica-killer", daemon=True)
    killer.start()
    try:
        report = close(rclient, scenario, ids, timeout_s=timeout_s)
    finally:
        done.set()
        killer.join(timeout=180)
    elapsed = time.monotonic() - started
    scenario.kills = c.kills
    scenario.figures.update(
        replicas=len(REPLICAS),
        kill_every_s=every_s,
        jobs_per_s=round(n / elapsed, 1),
        pending_events_of_killed=left_pending,
        recover_s=recover_s,
        recover_s_max=max(recover_s, default=0.0),
    )
    assert c.kills >= 1
    assert all(s < 120 for s in recover_s), recover_s  # every dead consumer's events reclaimed
    assert "failed" not in report.statuses, report.stop_reasons


@pytest.mark.timeout(300)
def test_one_of_three_replicas_killed_under_load_loses_nothing(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(24, 3.0, chaos_env, make_cluster, rclient, scenario, timeout_s=180)


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_replicas_killed_every_few_seconds_under_load_lose_nothing(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(300, 3.0, chaos_env, make_cluster, rclient, scenario, timeout_s=420)

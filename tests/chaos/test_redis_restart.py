"""Scenario 3: Redis dies (SIGKILL) and comes back on the same port with its AOF.

With ``appendonly yes`` + ``appendfsync always`` every acknowledged write (queues, the
unacked table, job state, events) survives. Workers and the orchestrator reconnect; a
worker's connection error is transient (retried), jobs in flight complete.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.chaos.helpers import close, steps, submit
from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import ScenarioRecord
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration


def _restart(server: RedisServer, down_s: float) -> RedisServer:
    assert server.proc is not None
    server.proc.kill()  # no shutdown save: only what the AOF already holds survives
    server.proc.wait(timeout=10)
    time.sleep(down_s)
    return RedisServer(server.workdir, appendonly=True, port=server.port).start()


@pytest.mark.chaos
@pytest.mark.timeout(300)
@pytest.mark.parametrize("restarts", [2])
def test_redis_restarted_mid_run_jobs_in_flight_complete(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    tmp_path: Path,
    scenario: ScenarioRecord,
    restarts: int,
) -> None:
    server = RedisServer(tmp_path / "aof", appendonly=True).start()
    c: ChaosCluster | None = None
    try:
        env = dict(
            chaos_env,
            RAGRELAY_REDIS_URL=server.url,
            RAGRELAY_FAULTS="analysis=sleep:0.2,generation=sleep:0.2",
        )
        c = make_cluster(env).up()
        client = server.client()
        ids = submit(client, 40, tag="restart")
        client.close()
        recoveries = []
        for _ in range(restarts):
            time.sleep(2.0)  # let work get in flight on every stage
            server = _restart(server, down_s=2.0)
            back_at = time.monotonic()
            scenario.redis_restarts += 1
            recoveries.append(back_at)
        client = server.client()
        close(client, scenario, ids, timeout_s=110)
        # How many steps the sweeper had to re-send (messages lost at the broker in the
        # outage: a task that failed on Redis and was acknowledged once Redis was back).
        scenario.figures["steps_resent_by_sweeper"] = sum(
            steps(client, j, "step.timeout") for j in ids
        )
        scenario.figures["recover_s_after_last_restart"] = round(
            time.monotonic() - recoveries[-1], 1
        )
        logs = "".join(
            c.log(s) for s in ("orchestrator", "analysis", "retrieval", "generation", "evaluation")
        )
        scenario.figures["reconnect_lines"] = logs.count("Connection to broker lost")
        assert all(p.poll() is None for p in c.procs.values()), "a process died on the outage"
    finally:
        if c is not None:
            c.stop()
        server.stop()

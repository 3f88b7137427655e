"""Scenario 7: many jobs at once against one worker per kind.

All finish, the queues drain, and each process's resident memory stays bounded (peak RSS,
prefork children included, sampled every 0.5 s).
"""

from __future__ import annotations

import time

import pytest
import redis

from tests.chaos.helpers import close, submit
from tests.chaos.procs import ChaosCluster, MakeCluster, RssSampler
from tests.chaos.record import ScenarioRecord

pytestmark = pytest.mark.integration

RSS_LIMIT_MB = 1024.0  # per process tree; a leak over 2,000 jobs would show well past this


def _run(
    n: int,
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
    timeout_s: float,
) -> None:
    env = dict(chaos_env, RAGRELAY_STEP_TIMEOUT_S="600")
    c: ChaosCluster = make_cluster(env).up(concurrency=None)
    sampler = RssSampler(c, rclient).start()
    started = time.monotonic()
    try:
        ids = submit(rclient, n, tag="load", deadline_s=3600.0)
        scenario.figures["submit_s"] = round(time.monotonic() - started, 1)
        close(rclient, scenario, ids, timeout_s=timeout_s)
    finally:
        sampler.stop()
    elapsed = time.monotonic() - started
    sampler.sample()
    scenario.figures.update(
        elapsed_s=round(elapsed, 1),
        jobs_per_s=round(n / elapsed, 1),
        peak_rss_mb=sampler.peak_rss_mb,
        peak_queue_depth=sampler.peak_depth,
    )
    assert sampler.peak_rss_mb and max(sampler.peak_rss_mb.values()) < RSS_LIMIT_MB
    assert max(sampler.peak_depth.values()) > 0  # there was a backlog ...
    assert sampler.depth_series[-1][1] == 0  # ... and it drained
    assert rclient.xlen("ragrelay:dlq") == 0


def test_a_burst_of_jobs_all_finish_and_queues_drain(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(100, chaos_env, make_cluster, rclient, scenario, timeout_s=90)


@pytest.mark.chaos
@pytest.mark.timeout(900)
def test_two_thousand_jobs_at_once_all_finish_with_bounded_memory(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    _run(2000, chaos_env, make_cluster, rclient, scenario, timeout_s=600)

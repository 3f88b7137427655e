"""Scenario: 5x overload, with admission control and without.

The cluster's capacity is measured first (a burst of jobs, closed); then jobs are offered at
five times that rate for a while, once with no limits and once with a per-queue depth limit
and a per-tenant in-flight limit. Without limits the queues grow for as long as the
overload lasts and so does every accepted job's latency; with them the excess is refused at
the door (``AdmissionRejected``, the gateway's 429), the queues stay near their limit and
the accepted jobs' p99 stays bounded. Every accepted job finishes in both runs (ledger).
"""

from __future__ import annotations

import time

import pytest
import redis

from bus.errors import AdmissionRejected
from bus.keys import STAGE_QUEUES, Keys
from orchestrator.admission import NO_LIMITS, AdmissionLimits
from orchestrator.jobs import JobStore
from ragrelay.bench.stats import percentile
from schemas import Budget, JobRequest
from tests.chaos.helpers import QUESTIONS, close
from tests.chaos.procs import WORKER_STAGES, MakeCluster
from tests.chaos.record import ScenarioRecord
from tests.support.ledger import wait_all_final

pytestmark = pytest.mark.integration

QUEUE_MAX = 8
TENANT_IN_FLIGHT = 16


def request(i: int) -> JobRequest:
    return JobRequest(
        query=QUESTIONS[i % len(QUESTIONS)], tenant="demo", budget=Budget(deadline_s=900.0)
    )


def depth(client: redis.Redis) -> int:
    pipe = client.pipeline(transaction=False)
    for q in STAGE_QUEUES:
        pipe.llen(q)
    return sum(int(n) for n in pipe.execute())


def offer(
    client: redis.Redis, limits: AdmissionLimits, rate: float, seconds: float
) -> tuple[dict[str, float], int, tuple[int, int], dict[str, float]]:
    """Offer jobs at ``rate``/s for ``seconds``; then wait for the accepted ones.

    Returns (submit time per accepted id, refused, (peak stage-queue depth, peak jobs
    running), finish time per id)."""
    store = JobStore(client, Keys(), ttl_s=600, admission=limits)
    keys = Keys()
    sent: dict[str, float] = {}
    done: dict[str, float] = {}
    refused = peak = peak_running = offered = 0
    started = time.monotonic()
    next_poll = 0.0
    while True:
        now = time.monotonic()
        offering = now - started < seconds
        while offering and offered < int((now - started) * rate):
            try:
                job_id, _ = store.submit(request(offered))
                sent[job_id] = time.monotonic()
            except AdmissionRejected:
                refused += 1
            offered += 1
        peak = max(peak, depth(client))
        peak_running = max(peak_running, int(client.zcard(keys.running)))
        if now >= next_poll:
            pending = [j for j in sent if j not in done]
            pipe = client.pipeline(transaction=False)
            for job_id in pending:
                pipe.exists(keys.result(job_id))
            seen = time.monotonic()
            for job_id, there in zip(pending, pipe.execute(), strict=True):
                if there:
                    done[job_id] = seen
            if not offering and (len(done) == len(sent) or now - started > seconds + 600):
                return sent, refused, (peak, peak_running), done
            next_poll = now + 0.25
        time.sleep(0.02)


@pytest.mark.chaos
@pytest.mark.timeout(1200)
def test_five_times_overload_is_shed_at_the_door_with_limits_and_queues_without(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    env = dict(chaos_env, RAGRELAY_STEP_TIMEOUT_S="600")
    c = make_cluster(env)
    c.orchestrator(wait=False)
    for stage in WORKER_STAGES:
        c.worker(stage, wait=False)
    c.wait_ready(timeout=240)  # a loaded machine starts five Python processes slowly
    store = JobStore(rclient, Keys(), ttl_s=600)
    burst = [store.submit(request(i))[0] for i in range(20)]  # also warms every process
    assert not wait_all_final(rclient, burst, timeout_s=300)
    started = time.monotonic()
    burst = [store.submit(request(i))[0] for i in range(30)]
    assert not wait_all_final(rclient, burst, timeout_s=300)
    capacity = 30 / (time.monotonic() - started)
    rate, seconds = 5 * capacity, 15.0
    figures: dict[str, object] = {"capacity_jobs_per_s": round(capacity, 2), "offered_per_s": rate}
    runs = {
        "no_limits": NO_LIMITS,
        "limits": AdmissionLimits(
            queue_depth=dict.fromkeys(STAGE_QUEUES, QUEUE_MAX), tenant_in_flight=TENANT_IN_FLIGHT
        ),
    }
    p99: dict[str, float] = {}
    peaks: dict[str, int] = {}
    for name, limits in runs.items():
        sent, refused, (peak, running), done = offer(rclient, limits, rate, seconds)
        lat = [done[j] - sent[j] for j in sent if j in done]
        p99[name] = percentile(lat, 99)
        peaks[name] = running
        figures[name] = {
            "accepted": len(sent),
            "refused": refused,
            "peak_queue_depth": peak,
            "peak_jobs_running": running,
            "p50_s": round(percentile(lat, 50), 2),
            "p99_s": round(p99[name], 2),
        }
        close(rclient, scenario, list(sent), timeout_s=600)  # every accepted job finished once
    scenario.figures.update(figures)
    assert figures["limits"]["refused"] > 0  # type: ignore[index]
    assert peaks["limits"] <= TENANT_IN_FLIGHT < peaks["no_limits"]
    assert p99["limits"] < p99["no_limits"]

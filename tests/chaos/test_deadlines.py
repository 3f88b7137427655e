"""Scenario 6: a step that never answers, and a job that runs past its deadline.

No evaluation worker is running: the evaluation step never answers. The sweeper re-sends
it up to the step policy (``RAGRELAY_STEP_MAX_ATTEMPTS``), then fails the job with a stop
reason naming the step. A job whose evaluation always says "revise" runs until its
deadline and ends ``budget_exhausted`` with the best answer so far.
"""

from __future__ import annotations

import time

import pytest
import redis

from bus.keys import Keys
from orchestrator.jobs import JobStore
from tests.chaos.helpers import close, steps, submit
from tests.chaos.procs import ChaosCluster, MakeCluster
from tests.chaos.record import MAX_TTL_S, ScenarioRecord
from tests.support.ledger import collect

pytestmark = pytest.mark.integration

STUCK_ENV = {"RAGRELAY_STEP_TIMEOUT_S": "2", "RAGRELAY_STEP_MAX_ATTEMPTS": "3"}


@pytest.mark.chaos
def test_silent_step_is_retried_by_policy_then_fails_the_job_naming_it(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    env = dict(chaos_env, **STUCK_ENV)
    c: ChaosCluster = make_cluster(env).up(("analysis", "retrieval", "generation"))
    ids = submit(rclient, 2, tag="stuck")
    report = close(rclient, scenario, ids, timeout_s=60)
    assert report.stop_reasons == {"step_timeout:evaluation": 2}
    jobs = JobStore(rclient, Keys())
    for job_id in ids:
        result = jobs.result(job_id)
        assert result is not None and result.status == "failed"
        assert f"step {job_id}/1/evaluation/0 did not answer after 3 attempts" in (
            result.error or ""
        )
        assert steps(rclient, job_id, "step.dispatched", "evaluation") == 3
        assert steps(rclient, job_id, "step.timeout", "evaluation") == 3
    # The three sends are still queued. A worker that comes back later runs them, and
    # their results change nothing: the jobs are final.
    c.worker("evaluation")
    deadline = time.monotonic() + 30
    while rclient.llen("evaluation") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    after = collect(rclient, ids, max_ttl_s=MAX_TTL_S)
    assert after.ok, after.problems()
    assert after.stop_reasons == {"step_timeout:evaluation": 2}
    assert after.steps_applied == report.steps_applied  # late results applied nothing


@pytest.mark.chaos
def test_job_past_its_deadline_ends_with_the_best_answer_so_far(
    chaos_env: dict[str, str],
    make_cluster: MakeCluster,
    rclient: redis.Redis,
    scenario: ScenarioRecord,
) -> None:
    # Every answer is sent back. The first answer comes at once; every revision takes 20 s,
    # so the deadline (8 s: room for the first iteration on a loaded machine) falls while
    # the second one runs, before a revision that repeats the first answer could end a job
    # as `unchanged_answer`.
    env = dict(chaos_env, RAGRELAY_FAULTS="evaluation=revise,generation=stall:20")
    make_cluster(env).up()
    ids = submit(rclient, 2, tag="deadline", deadline_s=8, max_iterations=20)
    report = close(rclient, scenario, ids, timeout_s=40)
    assert report.statuses == {"budget_exhausted": 2}
    assert report.stop_reasons == {"deadline": 2}
    jobs = JobStore(rclient, Keys())
    for job_id in ids:
        result = jobs.result(job_id)
        assert result is not None
        assert result.answer and result.citations, "the best answer so far is returned"
        assert result.iterations > 1

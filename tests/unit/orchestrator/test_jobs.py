"""The job store's Lua scripts on fakeredis (the embedded mode's in-process server)."""

from __future__ import annotations

import fakeredis
import pytest

from bus.errors import IdempotencyConflict
from bus.keys import Keys
from orchestrator.jobs import JobStore
from orchestrator.machine import advance
from schemas import Budget, JobEvent, JobRequest


def store() -> JobStore:
    return JobStore(fakeredis.FakeRedis(server=fakeredis.FakeServer()), Keys("t"))


def test_same_idempotency_key_returns_the_same_job() -> None:
    jobs = store()
    first, created = jobs.submit(JobRequest(query="q", idempotency_key="k1"))
    again, created_again = jobs.submit(JobRequest(query="q", idempotency_key="k1"))
    assert created and not created_again and again == first
    other, _ = jobs.submit(JobRequest(query="q", idempotency_key="k1", tenant="acme"))
    assert other != first  # keys are per tenant


def test_idempotency_key_reused_with_another_request_is_a_conflict_naming_the_job() -> None:
    jobs = store()
    first, _ = jobs.submit(JobRequest(query="q", idempotency_key="k1"))
    for changed in (
        {"query": "other"},
        {"budget": Budget(max_iterations=1)},
        {"metadata": {"a": 1}},
        {"user_id": "u1"},
        {"kind": "email_reply"},
    ):
        with pytest.raises(IdempotencyConflict) as caught:
            jobs.submit(JobRequest(**{"query": "q", "idempotency_key": "k1", **changed}))
        assert caught.value.job_id == first
    assert jobs.client.zcard(jobs.keys.running) == 1  # nothing else was created


def test_commit_is_compare_and_set() -> None:
    jobs = store()
    job_id, _ = jobs.submit(JobRequest(query="q"))
    loaded = jobs.load(job_id)
    assert loaded is not None
    state, version = loaded
    t = advance(state, JobEvent(type="job.submitted", job_id=job_id, at=1.0))
    assert jobs.commit(state, version, t)
    assert not jobs.commit(state, version, t)  # a concurrent writer already moved it on
    reloaded = jobs.load(job_id)
    assert reloaded is not None and reloaded[0].phase == "analysis" and reloaded[1] == "1"


def test_final_result_is_written_once_and_job_leaves_running_set() -> None:
    jobs = store()
    job_id, _ = jobs.submit(JobRequest(query="q"))
    state, version = jobs.load(job_id)  # type: ignore[misc]
    t = advance(state, JobEvent(type="job.deadline", job_id=job_id, at=1e12))
    assert jobs.commit(state, version, t)
    result = jobs.result(job_id)
    assert result is not None and result.stop_reason == "deadline"
    assert jobs.running() == []
    types = [e.type for _, e in jobs.trace(job_id)]
    assert types == ["job.submitted", "job.finished"]


def _meta(jobs: JobStore, task_id: str) -> dict[str, object] | None:
    import json

    raw = jobs.client.get(jobs.keys.celery_meta(task_id))
    return json.loads(raw) if raw else None


def test_a_duplicate_submission_gets_the_original_jobs_result_with_its_trace() -> None:
    """Issue 22, items 4 and 7: before the job ends (written at its end) and after."""
    jobs = store()
    request = JobRequest(query="q", idempotency_key="order-1234")
    job_id, _ = jobs.submit(request, job_id="task-1", reply_task_id="task-1")
    again, created = jobs.submit(request, job_id="task-2", reply_task_id="task-2")
    assert again == "task-1" and not created
    assert jobs.follow(again, "task-2") is False  # still running: written when it ends
    assert _meta(jobs, "task-2") is None
    state, version = jobs.load(job_id)  # type: ignore[misc]
    assert jobs.commit(
        state, version, advance(state, JobEvent(type="job.deadline", job_id=job_id, at=1e12))
    )
    assert jobs.follow(job_id, "task-3") is True  # after the end: written at once
    for task_id in ("task-1", "task-2", "task-3"):
        meta = _meta(jobs, task_id)
        assert meta is not None and meta["task_id"] == task_id and meta["status"] == "SUCCESS"
        result = meta["result"]
        assert isinstance(result, dict) and result["job_id"] == "task-1"
        assert [e["type"] for e in result["trace"]] == ["job.submitted", "job.finished"]


def test_a_refused_request_carries_its_one_trace_event_to_the_celery_result() -> None:
    jobs = store()
    jobs.fail_unparseable("task-9", "acme", "query: Field required", reply_task_id="task-9")
    meta = _meta(jobs, "task-9")
    assert meta is not None
    result = meta["result"]
    assert isinstance(result, dict) and [e["type"] for e in result["trace"]] == ["job.finished"]

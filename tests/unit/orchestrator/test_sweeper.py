"""The sweeper on fakeredis: overdue steps and past-deadline jobs become events; records
that cannot be read are quarantined and orphans dropped, once."""

from __future__ import annotations

from typing import Any

import fakeredis

from bus.events import EventLog
from bus.keys import Keys
from orchestrator.jobs import JobStore
from orchestrator.machine import advance
from orchestrator.sweeper import sweep
from schemas import JobEvent, JobRequest


def setup() -> tuple[JobStore, EventLog]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    keys = Keys("s")
    return JobStore(client, keys), EventLog(client, keys)


def started(jobs: JobStore, *, at: float = 100.0) -> str:
    job_id, _ = jobs.submit(JobRequest(query="q"), now=at)
    state, version = jobs.load(job_id)  # type: ignore[misc]
    assert jobs.commit(
        state, version, advance(state, JobEvent(type="job.submitted", job_id=job_id, at=at))
    )
    return job_id


def events(log: EventLog) -> list[JobEvent]:
    rows: Any = log.client.xrange(log.keys.events)
    return [JobEvent.model_validate_json(f[b"event"]) for _, f in rows]


def test_an_overdue_step_becomes_a_timeout_event_naming_its_attempt() -> None:
    jobs, log = setup()
    job_id = started(jobs)
    assert sweep(jobs, log, step_timeout_s=10, now=105.0)["timeout"] == 0
    counts = sweep(jobs, log, step_timeout_s=10, now=111.0)
    assert counts["timeout"] == 1
    (timeout,) = [e for e in events(log) if e.type == "step.timeout"]
    assert timeout.step_id == f"{job_id}/1/analysis/0" and timeout.payload == {"attempt": 1}


def test_a_job_past_its_deadline_becomes_a_deadline_event() -> None:
    jobs, log = setup()
    job_id = started(jobs)
    deadline = JobRequest(query="q").budget.deadline_s + 100.0
    counts = sweep(jobs, log, step_timeout_s=1e9, now=deadline + 1)
    assert counts == {"deadline": 1, "timeout": 0, "quarantined": 0, "orphans": 0}
    assert [e.type for e in events(log)][-1] == "job.deadline"
    assert events(log)[-1].job_id == job_id


def test_an_unreadable_running_job_is_quarantined_once() -> None:
    jobs, log = setup()
    job_id = started(jobs)
    jobs.client.hset(jobs.keys.job(job_id), "state", b"{not json")
    assert sweep(jobs, log, step_timeout_s=10, now=111.0)["quarantined"] == 1
    assert sweep(jobs, log, step_timeout_s=10, now=112.0)["quarantined"] == 0
    result = jobs.result(job_id)
    assert result is not None and result.stop_reason == "quarantined"


def test_a_running_entry_without_a_job_is_dropped() -> None:
    jobs, log = setup()
    jobs.client.zadd(jobs.keys.running, {"ghost": 1e12})
    assert sweep(jobs, log, step_timeout_s=10, now=111.0)["orphans"] == 1
    assert jobs.running() == []
    assert events(log) == []

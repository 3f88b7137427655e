"""The engine's batch path on fakeredis: load all, commit all, dispatch all; a second event
for a job in the same batch and a commit that loses its compare-and-set go one at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import fakeredis

from bus.keys import Keys
from orchestrator.engine import Engine
from orchestrator.jobs import JobStore
from orchestrator.machine import advance
from schemas import AnalysisResult, JobEvent, JobRequest


class RecordingDispatcher:
    """Keeps what was sent, and how many batches were opened."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (stage, task id)
        self.batches = 0

    def send(
        self, stage: str, payload: dict[str, Any], *, task_id: str, headers: dict[str, Any]
    ) -> None:
        assert headers["job_id"] == payload["job_id"] and headers["traceparent"]
        self.sent.append((stage, task_id))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self.batches += 1
        yield


def engine() -> tuple[Engine, JobStore, RecordingDispatcher]:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    keys = Keys("e")
    jobs = JobStore(client, keys)
    dispatcher = RecordingDispatcher()
    return Engine(client, jobs, dispatcher, keys=keys, consumer="test"), jobs, dispatcher


def submitted(job_id: str) -> JobEvent:
    return JobEvent(type="job.submitted", job_id=job_id, at=1.0)


def analysed(job_id: str) -> JobEvent:
    step = f"{job_id}/1/analysis/0"
    return JobEvent(
        type="step.result",
        job_id=job_id,
        step_id=step,
        stage="analysis",
        at=2.0,
        payload=AnalysisResult(job_id=job_id, step_id=step, rewrites=["q"]).to_dict(),
    )


def test_a_batch_of_several_jobs_is_applied_and_dispatched_in_one_batch() -> None:
    eng, jobs, dispatcher = engine()
    ids = [jobs.submit(JobRequest(query=f"q{i}"))[0] for i in range(3)]
    eng.handle_batch([submitted(j) for j in ids])
    assert sorted(dispatcher.sent) == sorted(("analysis", f"{j}/1/analysis/0@1") for j in ids)
    assert dispatcher.batches == 1
    for j in ids:
        state, version = jobs.load(j)  # type: ignore[misc]
        assert state.phase == "analysis" and version == "1"


def test_a_second_event_for_a_job_in_the_batch_is_applied_after_the_first() -> None:
    eng, jobs, dispatcher = engine()
    job_id, _ = jobs.submit(JobRequest(query="q"))
    eng.handle_batch([submitted(job_id), analysed(job_id)])
    stages = [stage for stage, _ in dispatcher.sent]
    assert stages == ["analysis", "retrieval"]
    state, version = jobs.load(job_id)  # type: ignore[misc]
    assert state.phase == "retrieval" and version == "2"


def test_a_redelivered_event_in_the_same_batch_changes_nothing_twice() -> None:
    eng, jobs, dispatcher = engine()
    job_id, _ = jobs.submit(JobRequest(query="q"))
    eng.handle_batch([submitted(job_id), submitted(job_id)])
    assert dispatcher.sent == [("analysis", f"{job_id}/1/analysis/0@1")]
    assert jobs.load(job_id)[1] == "1"  # type: ignore[index]


def test_a_commit_that_loses_its_compare_and_set_is_retried_from_a_fresh_load() -> None:
    eng, jobs, dispatcher = engine()
    job_id, _ = jobs.submit(JobRequest(query="q"))
    eng.handle_batch([submitted(job_id)])
    dispatcher.sent.clear()
    real_commit_many = jobs.commit_many
    raced: list[bool] = []

    def racing_commit_many(items: Any) -> Any:
        if not raced:  # another replica moves the job on between our load and our commit
            raced.append(True)
            state, version = jobs.load(job_id)  # type: ignore[misc]
            timeout = JobEvent(
                type="step.timeout",
                job_id=job_id,
                stage="analysis",
                at=3.0,
                step_id=f"{job_id}/1/analysis/0",
                payload={"attempt": 1},
            )
            assert real_commit_many([(state, version, advance(state, timeout))])[0]
        return real_commit_many(items)

    jobs.commit_many = racing_commit_many  # type: ignore[method-assign]
    eng.handle_batch([analysed(job_id)])
    # the batch's commit lost (stale version); the event was applied again from a fresh load
    assert dispatcher.sent == [("retrieval", f"{job_id}/1/retrieval/0@1")]
    state, version = jobs.load(job_id)  # type: ignore[misc]
    assert state.phase == "retrieval" and version == "3"


def test_an_event_for_an_unknown_job_is_skipped() -> None:
    eng, _, dispatcher = engine()
    eng.handle_batch([submitted("nope")])
    assert dispatcher.sent == [] and dispatcher.batches == 1


def test_poll_reads_acknowledges_and_applies_stream_entries() -> None:
    eng, jobs, dispatcher = engine()
    job_id, _ = jobs.submit(JobRequest(query="q"))  # appends job.submitted to the stream
    assert eng.poll(block_ms=None) == 1
    assert dispatcher.sent == [("analysis", f"{job_id}/1/analysis/0@1")]
    pending: Any = jobs.client.xpending(jobs.keys.events, "orchestrator")
    assert pending["pending"] == 0
    assert eng.poll(block_ms=None) == 0

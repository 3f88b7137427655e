"""Several orchestrator replicas sweeping the same running set on a real redis-server: an
overdue step is timed out (and re-sent) once, however the sweeps and the engines race."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bus.events import EventLog
from bus.keys import Keys
from orchestrator.engine import Engine
from orchestrator.jobs import JobStore
from orchestrator.loop import take_sweep_turn
from orchestrator.machine import advance
from orchestrator.sweeper import sweep
from schemas import JobEvent, JobRequest

pytestmark = pytest.mark.integration


class Recording:
    """A dispatcher that keeps what it was asked to send (stage, task id)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def send(
        self, stage: str, payload: dict[str, Any], *, task_id: str, headers: dict[str, Any]
    ) -> None:
        with self.lock:
            self.sent.append((stage, task_id))

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        yield


def started(jobs: JobStore, at: float) -> str:
    job_id, _ = jobs.submit(JobRequest(query="q"), now=at)
    state, version = jobs.load(job_id)  # type: ignore[misc]
    assert jobs.commit(
        state, version, advance(state, JobEvent(type="job.submitted", job_id=job_id, at=at))
    )
    return job_id


def race(fns: list[Any]) -> None:
    barrier = threading.Barrier(len(fns))

    def run(fn: Any) -> None:
        barrier.wait()
        fn()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def test_two_sweepers_racing_time_out_each_overdue_step_once(redis_url: str) -> None:
    keys = Keys("race")
    replicas = []
    for i in range(2):  # each replica its own connection, store, engine, dispatcher
        client = redis.Redis.from_url(redis_url)
        jobs = JobStore(client, keys)
        replicas.append((jobs, EventLog(client, keys), Recording(), i))
    jobs0 = replicas[0][0]
    ids = [started(jobs0, at=100.0) for _ in range(30)]
    engines = [
        Engine(jobs.client, jobs, rec, keys=keys, consumer=f"replica-{i}")
        for jobs, _, rec, i in replicas
    ]
    engines[0].poll(block_ms=None)  # the submitted events, already applied above: no sends
    assert replicas[0][2].sent == []

    emitted: list[int] = []
    for _ in range(3):  # three rounds of both sweepers at once, then both engines at once
        race(
            [
                lambda j=jobs, e=log: emitted.append(
                    sweep(j, e, step_timeout_s=10, now=111.0)["timeout"]
                )
                for jobs, log, _, _ in replicas
            ]
        )
        race([lambda e=engine: e.poll(block_ms=None) for engine in engines])
    assert sum(emitted) == 60  # both sweepers saw every step overdue: the race was real

    resent = replicas[0][2].sent + replicas[1][2].sent
    assert sorted(stage for stage, _ in resent) == ["analysis"] * 30  # once per job, not twice
    for job_id in ids:
        state, _ = jobs0.load(job_id)  # type: ignore[misc]
        (step,) = state.pending.values()
        assert step.attempt == 2  # one timeout applied, not two
        timeouts = [e for _, e in jobs0.trace(job_id) if e.type == "step.timeout"]
        assert len(timeouts) == 1


def test_only_one_replica_takes_each_sweep_turn(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = Keys("turn")
    won: list[bool] = []
    race([lambda i=i: won.append(take_sweep_turn(client, keys, f"r{i}", 5.0)) for i in range(4)])
    assert sorted(won) == [False, False, False, True]
    client.delete(keys.sweep_turn)  # the turn expires; then the next one is taken
    assert take_sweep_turn(client, keys, "r1", 5.0)

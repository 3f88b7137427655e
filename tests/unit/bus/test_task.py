"""The one task base (bus/task.py) on the embedded mode's fakeredis: validation before
anything (invalid -> dead letter, never retried), retry classification, and the
redelivery and poison guards."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from bus.app import create_app
from bus.errors import PermanentError, TransientError
from bus.runtime import Runtime, attach
from bus.settings import Settings
from bus.task import RagrelayTask, StageTaskBase
from schemas import AnalysisResult, AnalysisTask, JobEvent

Behaviour = Callable[[AnalysisTask], AnalysisResult]


class Harness:
    """One ``ragrelay.analysis``-like task whose handler does what the test says."""

    def __init__(self, behaviour: Behaviour, **settings: Any) -> None:
        self.settings = Settings(redis_url=None, key_prefix=f"t{uuid.uuid4().hex[:10]}", **settings)
        self.app = create_app(self.settings)
        self.runtime = attach(self.app, Runtime(settings=self.settings))
        self.calls = 0
        base = type(
            "Base",
            (StageTaskBase,),
            {"abstract": True, "message_model": AnalysisTask, "stage": "analysis"},
        )

        def run(task: StageTaskBase, msg: AnalysisTask) -> AnalysisResult:
            self.calls += 1
            return behaviour(msg)

        self.task = self.app.task(name="ragrelay.analysis", base=base, bind=True, shared=False)(run)

    def send(self, payload: Any, *, task_id: str = "t1") -> None:
        self.task.apply(args=[payload], task_id=task_id)

    def events(self) -> list[JobEvent]:
        rows: Any = self.runtime.redis.xrange(self.runtime.keys.events)
        return [JobEvent.model_validate_json(f[b"event"]) for _, f in rows]

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.runtime.dead_letters.list()


def task(attempt: int = 1) -> dict[str, Any]:
    return AnalysisTask(
        job_id="j1", step_id="j1/1/analysis/0", tenant="acme", query="q", attempt=attempt
    ).to_dict()


def answer(msg: AnalysisTask) -> AnalysisResult:
    return AnalysisResult(job_id="", step_id="", rewrites=[msg.query])


def test_a_valid_task_reports_its_result_once_with_ids_and_worker() -> None:
    h = Harness(answer)
    h.send(task())
    (event,) = h.events()
    assert event.type == "step.result" and event.step_id == "j1/1/analysis/0"
    assert event.payload["job_id"] == "j1" and event.payload["rewrites"] == ["q"]
    assert event.worker_pid > 0 and h.runtime.events.is_done("j1/1/analysis/0")


def test_an_invalid_message_is_dead_lettered_and_fails_its_step_without_running() -> None:
    h = Harness(answer)
    h.send({**task(), "query": 7, "surprise": True})
    assert h.calls == 0
    (letter,) = h.dead_letters()
    assert letter["kind"] == "invalid" and "query" in letter["reason"]
    assert letter["job_id"] == "j1" and letter["payload"]["surprise"] is True
    (event,) = h.events()
    assert event.type == "step.failed" and event.error_kind == "invalid"


def test_a_transient_error_is_retried_and_the_step_then_succeeds() -> None:
    failures = [TransientError("rate limited"), TransientError("timeout")]

    def flaky(msg: AnalysisTask) -> AnalysisResult:
        if failures:
            raise failures.pop(0)
        return answer(msg)

    h = Harness(flaky, max_retries=4)
    h.send(task())
    assert h.calls == 3
    assert [e.type for e in h.events()] == ["step.result"] and h.dead_letters() == []


def test_transient_errors_past_the_retry_policy_are_dead_lettered() -> None:
    def down(msg: AnalysisTask) -> AnalysisResult:
        raise ConnectionError("connection reset")

    h = Harness(down, max_retries=2)
    h.send(task())
    assert h.calls == 3  # the first attempt and two retries
    (letter,) = h.dead_letters()
    assert letter["kind"] == "transient_exhausted" and "3 attempts" in letter["reason"]
    assert [e.error_kind for e in h.events()] == ["transient_exhausted"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (PermanentError("no such model"), "permanent"),
        (RuntimeError("a bug"), "crash"),
    ],
)
def test_permanent_errors_and_crashes_are_dead_lettered_without_a_retry(
    error: Exception, kind: str
) -> None:
    def fail(msg: AnalysisTask) -> AnalysisResult:
        raise error

    h = Harness(fail, max_retries=4)
    h.send(task())
    assert h.calls == 1
    (letter,) = h.dead_letters()
    assert letter["kind"] == kind and letter["task"] == "ragrelay.analysis"
    assert [e.type for e in h.events()] == ["step.failed"]


def test_a_resent_step_already_reported_is_skipped() -> None:
    h = Harness(answer)
    h.send(task())
    h.send(task(attempt=2), task_id="t1-resent")  # the sweeper re-sent it; it had finished
    assert h.calls == 1 and len(h.events()) == 1


def test_a_first_delivery_is_not_checked_against_the_done_marker() -> None:
    h = Harness(answer)
    h.send(task())
    h.send(task(), task_id="t2")  # attempt 1, not redelivered: no round trip, runs again
    assert h.calls == 2


def test_a_task_started_more_than_max_deliveries_times_is_dead_lettered_as_poison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness(answer, max_deliveries=1)
    monkeypatch.setattr(RagrelayTask, "redelivered", lambda self: True)  # the broker put it back
    h.send(task())  # its first start (uncounted) and this one: 2 > 1
    assert h.calls == 0
    (letter,) = h.dead_letters()
    assert letter["kind"] == "poison"
    assert [e.error_kind for e in h.events()] == ["poison"]


def test_a_first_delivery_makes_no_poison_round_trip() -> None:
    h = Harness(answer, max_deliveries=1)
    h.send(task())
    assert h.calls == 1
    assert not h.runtime.redis.exists(h.runtime.keys.deliveries("t1:0"))


def test_a_redelivery_counts_the_first_start_too(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(answer, max_deliveries=3)
    monkeypatch.setattr(RagrelayTask, "redelivered", lambda self: True)
    h.send(task())  # its first delivery (uncounted) and this one
    assert h.calls == 1
    assert int(h.runtime.redis.get(h.runtime.keys.deliveries("t1:0"))) == 2

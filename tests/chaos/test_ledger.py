"""The ledger and the summary are pure functions: checked here without Redis."""

from __future__ import annotations

from bus.keys import Keys
from schemas import JobResult, TraceEvent
from tests.chaos.run import summarise
from tests.support.ledger import audit, orphaned_keys


def ev(job: str, type_: str, step: str | None = None) -> TraceEvent:
    return TraceEvent(job_id=job, type=type_, at=1.0, step_id=step)


def result(job: str, status: str = "succeeded") -> JobResult:
    return JobResult(job_id=job, tenant="t", status=status, stop_reason="accepted")


def test_a_clean_ledger_is_ok() -> None:
    traces = {"a": [ev("a", "step.completed", "a/1/analysis/0"), ev("a", "job.finished")]}
    report = audit(["a"], {"a": result("a")}, traces)
    assert report.ok and report.final_results == 1 and report.steps_applied == 1


def test_a_job_without_result_or_finish_is_lost() -> None:
    traces = {"a": [ev("a", "job.finished")], "b": []}
    report = audit(["a", "b", "c"], {"a": result("a"), "b": result("b")}, traces)
    assert report.lost == ["b", "c"] and not report.ok
    assert "2 lost" in report.problems()


def test_a_step_applied_twice_and_a_job_finished_twice_are_caught() -> None:
    step = "a/1/generation/0"
    traces = {
        "a": [
            ev("a", "step.completed", step),
            ev("a", "step.completed", step),
            ev("a", "step.completed", step),
            ev("a", "job.finished"),
            ev("a", "job.finished"),
        ]
    }
    report = audit(["a"], {"a": result("a")}, traces)
    assert report.duplicated_effects == 2 and report.duplicated_steps == [step]
    assert report.finished_twice == ["a"] and not report.ok


def test_keys_without_ttl_or_with_a_long_one_are_orphans() -> None:
    keys = Keys()
    ttls = {
        "ragrelay:events": -1,
        "ragrelay:dlq": -1,
        "ragrelay:running": -1,
        "ragrelay:job:a": -1,
        "ragrelay:done:a/1/analysis/0": 600,
        "ragrelay:idem:t:k": 604800,
        "unacked": -1,
    }
    assert orphaned_keys(ttls, keys=keys, max_ttl_s=3600) == [
        "ragrelay:idem:t:k (TTL 604800 s > 3600 s)",
        "ragrelay:job:a (no TTL)",
    ]
    report = audit(
        ["a"],
        {"a": result("a")},
        {"a": [ev("a", "job.finished")]},
        key_ttls={},
        running=["a"],
        keys=keys,
    )
    assert report.orphans == ["ragrelay:running still holds a"]


def test_summary_sums_scenarios_and_counts_the_passed_ones() -> None:
    records = [
        {
            "jobs": 3,
            "final_results": 3,
            "lost": 0,
            "duplicated_effects": 0,
            "dead_lettered": 1,
            "kills": 4,
            "redis_restarts": 0,
            "passed": True,
        },
        {
            "jobs": 2,
            "final_results": 1,
            "lost": 1,
            "duplicated_effects": 0,
            "dead_lettered": 0,
            "kills": 0,
            "redis_restarts": 2,
            "passed": False,
        },
    ]
    assert summarise(records) == {
        "jobs": 5,
        "final_results": 4,
        "lost": 1,
        "duplicated_effects": 0,
        "dead_lettered": 1,
        "kills": 4,
        "redis_restarts": 2,
        "scenarios_passed": 1,
        "scenarios": 2,
    }

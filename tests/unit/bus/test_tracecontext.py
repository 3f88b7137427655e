"""W3C traceparent derived from job and step ids."""

from __future__ import annotations

from bus.tracecontext import (
    parse_traceparent,
    span_id_for,
    trace_id_for,
    traceparent_for,
)

JOB = "8b2cc6c2ca9c4dc886a4426f882fb262"


def test_traceparent_uses_the_job_id_as_trace_id() -> None:
    tp = traceparent_for(JOB, f"{JOB}/1/analysis/0")
    version, trace_id, span_id, flags = tp.split("-")
    assert (version, trace_id, flags) == ("00", JOB, "01")
    assert len(span_id) == 16 and int(span_id, 16) > 0


def test_same_step_same_span_in_every_process_and_steps_differ() -> None:
    a = traceparent_for(JOB, f"{JOB}/1/analysis/0")
    assert a == traceparent_for(JOB, f"{JOB}/1/analysis/0")
    assert a != traceparent_for(JOB, f"{JOB}/2/analysis/0")
    assert traceparent_for(JOB) == traceparent_for(JOB, None)  # the job's root span


def test_ids_that_are_not_32_hex_are_hashed_into_shape() -> None:
    for job in ("6f1d2c1e-7a7b-4c5e-9d0e-2b1f3a4c5d6e", "celery-task-1", "0" * 32, JOB.upper()):
        trace_id = trace_id_for(job)
        assert len(trace_id) == 32 and trace_id != "0" * 32 and trace_id == trace_id.lower()
    assert trace_id_for(JOB.upper()) == JOB
    assert trace_id_for("celery-task-1") == trace_id_for("celery-task-1")
    assert len(span_id_for("x")) == 16


def test_parse_round_trips_and_rejects_invalid_headers() -> None:
    tp = traceparent_for(JOB, "s")
    parsed = parse_traceparent(tp)
    assert parsed is not None and parsed.trace_id == JOB and parsed.sampled
    for bad in (
        "",
        "00-abc-def-01",
        f"ff-{JOB}-{'1' * 16}-01",
        f"00-{'0' * 32}-{'1' * 16}-01",
        f"00-{JOB}-{'0' * 16}-01",
        f"00-{JOB.upper()}-{'1' * 16}-01",
    ):
        assert parse_traceparent(bad) is None, bad

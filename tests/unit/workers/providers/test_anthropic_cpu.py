"""What the provider builds once per process instead of per call."""

from __future__ import annotations

import json

from opentelemetry import trace

from schemas import AnalysisTask
from workers.prompts import load_prompt
from workers.providers.anthropic import sdk_open_telemetry
from workers.providers.anthropic_outputs import tool_chars, tool_for
from workers.providers.anthropic_requests import StageRequest, analysis_request


def test_the_tool_schema_is_built_once_and_shared() -> None:
    assert tool_for("generation") is tool_for("generation")
    assert tool_chars("generation") == len(json.dumps(tool_for("generation")))


def test_the_token_estimate_is_the_same_with_the_shared_tool_and_a_copy() -> None:
    req = analysis_request(
        AnalysisTask(job_id="j", step_id="s", tenant="t", query="rotate the key?"),
        load_prompt("analysis"),
    )
    copy = StageRequest(**{**req.__dict__, "tool": json.loads(json.dumps(req.tool))})
    assert req.tool is tool_for("analysis")
    assert req.estimated_input_tokens() == copy.estimated_input_tokens()


def test_sdk_spans_are_off_without_a_tracer_provider() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert sdk_open_telemetry({}) == {"open_telemetry": False}


def test_sdk_spans_follow_the_sdk_or_otel_settings_when_given() -> None:
    assert sdk_open_telemetry({"ANTHROPIC_OPEN_TELEMETRY": "true"}) == {}
    assert sdk_open_telemetry({"ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE": "content"}) == {}
    assert sdk_open_telemetry({"OTEL_PYTHON_TRACER_PROVIDER": "sdk_tracer_provider"}) == {}

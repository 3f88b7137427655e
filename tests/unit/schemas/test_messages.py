import pytest
from pydantic import ValidationError

from bus.errors import InvalidMessage
from bus.task import validate_payload
from schemas import AnalysisTask, JobRequest, Usage


def test_blank_query_is_rejected_with_the_field_named() -> None:
    with pytest.raises(InvalidMessage, match="query"):
        validate_payload(JobRequest, {"query": "   "})


def test_newer_schema_version_is_rejected() -> None:
    with pytest.raises(ValidationError, match="newer"):
        JobRequest(query="q", schema_version=99)


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(InvalidMessage, match="surprise"):
        validate_payload(JobRequest, {"query": "q", "surprise": 1})


def test_non_object_payload_is_a_clear_error() -> None:
    with pytest.raises(InvalidMessage, match="JSON object"):
        validate_payload(AnalysisTask, ["not", "a", "dict"])


def test_invalid_message_keeps_the_job_id_when_present() -> None:
    with pytest.raises(InvalidMessage) as info:
        validate_payload(AnalysisTask, {"job_id": "j9", "step_id": "s"})
    assert info.value.job_id == "j9"


def test_usage_adds_up() -> None:
    total = Usage(llm_calls=1, input_tokens=10, cost_usd=0.1) + Usage(llm_calls=2, output_tokens=5)
    assert (total.llm_calls, total.tokens, total.cost_usd) == (3, 15, 0.1)


def test_messages_are_json_round_trippable() -> None:
    req = JobRequest(query="q", tenant="acme", idempotency_key="k")
    assert JobRequest.from_json(req.to_json()) == req

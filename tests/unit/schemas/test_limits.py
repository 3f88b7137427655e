"""Free-form JSON bounds, and messages that cannot be stored unless they read back."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator.state import JobState
from schemas import Budget, JobRequest, limits


def nested(depth: int, leaf: Any = 1) -> dict[str, Any]:
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], "expected a JSON object, got list"),
        ({"x": float("inf")}, "finite (not NaN or Infinity) at x"),
        ({"x": [1, {"y": float("nan")}]}, "at x[1].y"),
        ({"x": -float("inf")}, "finite"),
        ({"x": 2**64}, "64-bit range at x"),
        ({1: "a"}, "keys must be strings"),
        ({"x": {1, 2}}, "set is not a JSON value at x"),
        ({"x": b"bytes"}, "bytes is not a JSON value"),
        (nested(limits.MAX_JSON_DEPTH + 1), f"nested deeper than {limits.MAX_JSON_DEPTH}"),
        (nested(100_000), "nested deeper than"),  # iterative: no RecursionError
        ({"x": "é" * limits.MAX_METADATA_BYTES}, "bytes as JSON; at most"),
    ],
)
def test_metadata_outside_the_bounds_is_refused_naming_where(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        limits.metadata(value)
    assert message in str(caught.value)


def test_metadata_within_the_bounds_is_kept_as_it_is() -> None:
    value = {"a": [1, 2.5, None, True, "x"], "b": nested(limits.MAX_JSON_DEPTH - 1)}
    assert limits.metadata(value) is value


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_like = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_like, max_size=5))
def test_whatever_the_check_accepts_reads_back_unchanged(value: dict[str, Any]) -> None:
    """The class of the probe's poison job: accepted means stored and read back equal."""
    try:
        limits.metadata(value)
    except ValueError:
        return
    assert json.loads(json.dumps(value)) == value


@pytest.mark.parametrize(
    "raw",
    [
        '{"query": "x", "budget": {"max_cost_usd": 1e400}}',
        '{"query": "x", "budget": {"max_cost_usd": Infinity}}',
        '{"query": "x", "budget": {"deadline_s": -Infinity}}',
        '{"query": "x", "budget": {"max_cost_usd": NaN}}',
        '{"query": "x", "budget": {"max_iterations": "3"}}',
        '{"query": "x", "budget": {"max_iterations": true}}',
        '{"query": "x", "budget": {"max_tokens": 1e30}}',
        '{"query": "x", "metadata": {"n": 1e400}}',
    ],
)
def test_a_request_that_could_not_be_stored_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        JobRequest.model_validate_json(raw)


def test_python_callers_meet_the_same_bounds() -> None:
    for bad in (
        {"max_cost_usd": float("inf")},
        {"deadline_s": float("nan")},
        {"max_iterations": "3"},
        {"max_llm_calls": True},
    ):
        with pytest.raises(ValidationError):
            JobRequest(query="x", budget=Budget.model_validate(bad))
    with pytest.raises(ValidationError, match="nested deeper"):
        JobRequest(query="x", metadata=nested(500))


budgets = st.fixed_dictionaries(
    {},
    optional={
        "max_iterations": st.integers(-5, 30),
        "max_llm_calls": st.integers(-5, 2000),
        "max_tokens": st.one_of(st.integers(-5, 10**12), st.floats()),
        "max_cost_usd": st.one_of(st.floats(), st.integers(-5, 10**9)),
        "deadline_s": st.one_of(st.floats(), st.integers(-5, 10**6)),
    },
)


@settings(max_examples=300, deadline=None)
@given(budgets, st.dictionaries(st.text(max_size=5), json_like, max_size=3))
def test_every_request_that_validates_round_trips_through_the_stored_state(
    budget: dict[str, Any], metadata: dict[str, Any]
) -> None:
    try:
        request = JobRequest.model_validate({"query": "q", "budget": budget, "metadata": metadata})
    except ValidationError:
        return
    assert all(math.isfinite(v) for v in request.budget.model_dump().values())
    state = JobState(
        job_id="j", request=request, created_at=1.0, deadline_at=1.0 + request.budget.deadline_s
    )
    assert JobState.model_validate_json(state.model_dump_json()) == state


@pytest.mark.parametrize(
    "flag",
    ["--max-cost-usd=inf", "--max-cost-usd=nan", "--deadline-s=-inf", "--max-tokens=1000000000000"],
)
def test_the_cli_refuses_the_same_numbers_with_exit_2(flag: str) -> None:
    from click.testing import CliRunner

    from ragrelay.cli.app import cli

    out = CliRunner().invoke(cli, ["ask", "q", flag])
    assert out.exit_code == 2, out.output
    assert "budget" in out.output or "max_" in out.output or "deadline" in out.output

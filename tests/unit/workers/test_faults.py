"""The fault injector's spec and the kinds that need no Redis."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bus.errors import ConfigError
from bus.keys import Keys
from workers.faults import Fault, FaultInjector, parse_faults


def test_the_spec_reads_every_kind_and_refuses_an_unknown_one() -> None:
    assert parse_faults("generation=stall:20, evaluation=revise") == {
        "generation": Fault("stall", 20.0),
        "evaluation": Fault("revise", 1.0),
    }
    with pytest.raises(ConfigError, match="expected stage=kind"):
        parse_faults("generation=nap:3")


def test_stall_sleeps_only_from_a_jobs_second_iteration(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr("workers.faults.time.sleep", slept.append)
    client: Any = None  # stall counts nothing in Redis
    injector = FaultInjector(parse_faults("generation=stall:20"), client, Keys())
    injector.before("generation", SimpleNamespace(iteration=1, step_id="j/1/generation/0"))
    assert slept == []
    injector.before("generation", SimpleNamespace(iteration=2, step_id="j/2/generation/0"))
    injector.before("analysis", SimpleNamespace(iteration=3, step_id="j/3/analysis/0"))
    assert slept == [20.0]

"""The stage registry is the one list of stages; everything that must know a stage derives
from it, and these checks fail when a stage is added in one place and not the others."""

from __future__ import annotations

from typing import get_args

from bus.app import routes
from bus.keys import QUEUES, STAGE_QUEUES, task_name
from orchestrator.machine import TRANSITIONS
from orchestrator.state import Phase
from ragrelay.cli.run import DEFAULT_POOLS, STAGES
from ragrelay.observe.page import STAGE_COLOURS
from schemas import RESULT_MODELS, STAGE_SPECS, TASK_MODELS, Stage
from schemas.fingerprint import LLM_STAGES
from workers.noop import noop_result
from workers.tasks import HANDLERS


def test_the_stage_literal_and_the_registry_name_the_same_stages_in_order() -> None:
    assert tuple(STAGE_SPECS) == get_args(Stage)
    for name, spec in STAGE_SPECS.items():
        assert spec.name == name
        assert spec.task_model is TASK_MODELS[name]
        assert spec.result_model is RESULT_MODELS[name]


def test_the_wire_protocol_is_unchanged() -> None:
    assert STAGE_QUEUES == ("analysis", "retrieval", "generation", "evaluation")
    assert ("orchestrator", *STAGE_QUEUES, "ingest") == QUEUES
    assert {spec.task_name for spec in STAGE_SPECS.values()} == {task_name(q) for q in STAGE_QUEUES}
    assert routes()["ragrelay.retrieval"] == {"queue": "retrieval"}
    assert {"analysis", "generation", "evaluation"} == LLM_STAGES


def test_every_registered_stage_has_a_handler_a_transition_and_a_worker() -> None:
    assert set(HANDLERS) == set(STAGE_SPECS)
    assert set(TRANSITIONS) == set(STAGE_SPECS)
    assert {v for lit in get_args(Phase) for v in get_args(lit)} == {"new", "done", *STAGE_SPECS}
    assert (*STAGE_SPECS, "ingest") == STAGES
    assert DEFAULT_POOLS == {
        "analysis": "threads",
        "retrieval": "prefork",
        "generation": "threads",
        "evaluation": "threads",
        "ingest": "prefork",
    }


def test_every_registered_stage_has_a_zero_cost_answer_and_a_colour() -> None:
    for name, spec in STAGE_SPECS.items():
        fields = {
            "job_id": "j",
            "step_id": f"j/1/{name}/0",
            "tenant": "t",
            "query": "q",
            "answer": "a",
        }
        task = spec.task_model.model_validate(
            {k: v for k, v in fields.items() if k in spec.task_model.model_fields}
        )
        assert isinstance(noop_result(name, task), spec.result_model)
        assert name in STAGE_COLOURS

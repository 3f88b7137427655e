"""What a stage was asked and what it answered, in a form a trace can keep and a replay reuse.

``input_fingerprint`` hashes a stage task's content without its envelope (job and step ids,
iteration, attempt, limits): two tasks with the same fingerprint ask the model the same
thing, whichever job they belong to. The orchestrator computes it from the payload it sent
(``task.to_dict()``), a worker from the task it validated; both see the same JSON.
``recorded_output`` is a result without its envelope (ids, usage, worker, timing). Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from schemas.stages import STAGE_SPECS, StageResultBase

#: Stages whose results come from a language model (the ones worth reusing in a replay).
LLM_STAGES = frozenset(name for name, spec in STAGE_SPECS.items() if spec.calls_llm)

_TASK_ENVELOPE = frozenset(
    {"schema_version", "job_id", "step_id", "iteration", "attempt", "limits"}
)
_RESULT_ENVELOPE = {
    "schema_version",
    "job_id",
    "step_id",
    "usage",
    "worker_host",
    "worker_pid",
    "started_at",
    "ended_at",
}


#: Fields added to tasks after recording began, left out at their default so that a task
#: which does not use them keeps the fingerprint it had before they existed.
_LATER_FIELDS: dict[str, Any] = {"reread": False, "confidence": None}


def input_fingerprint(payload: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the task's content (``payload`` = ``task.to_dict()``)."""
    content = {
        k: v
        for k, v in payload.items()
        if k not in _TASK_ENVELOPE and not (k in _LATER_FIELDS and v == _LATER_FIELDS[k])
    }
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def recorded_output(result: StageResultBase) -> dict[str, Any]:
    """The result's content, to rebuild it later with another job's ids."""
    return result.model_dump(mode="json", exclude=_RESULT_ENVELOPE)


__all__ = ["LLM_STAGES", "input_fingerprint", "recorded_output"]

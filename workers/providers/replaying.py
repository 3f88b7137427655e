"""Reuse a recorded job's model outputs where a replay asks the same thing again.

``ragrelay replay JOB_ID`` writes what the job's trace recorded for each language stage
(its input fingerprint, prompt version and result) to a file and points
``RAGRELAY_REPLAY_OUTPUTS`` at it. :class:`ReplayingProvider` then answers a stage from that
file when the task's input fingerprint *and* the prompt version the provider would use now
both match a recording; anything else (a pinned new prompt, or an input that changed
because an earlier stage answered differently) goes to the real provider. A reused result
costs nothing: its usage is zero, because no model was called.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bus.errors import ConfigError
from schemas import (
    AnalysisResult,
    AnalysisTask,
    EvaluationResult,
    EvaluationTask,
    GenerationResult,
    GenerationTask,
    StageResultBase,
    TaskEnvelope,
)
from schemas.fingerprint import input_fingerprint
from workers.ports import LLMProvider

R = TypeVar("R", bound=StageResultBase)


class _Versioned(Protocol):
    def prompt_ref(self, stage: str) -> str: ...


Recordings = dict[tuple[str, str], Mapping[str, Any]]  # (stage, input_sha) -> result


def load_recordings(path: Path) -> Recordings:
    """``[{"stage", "input_sha", "result"}, ...]`` as written by ``ragrelay replay``."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return {(str(r["stage"]), str(r["input_sha"])): dict(r["result"]) for r in rows}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"RAGRELAY_REPLAY_OUTPUTS={path}: not a recordings file ({exc})") from exc


class ReplayingProvider:
    """An :class:`LLMProvider` that answers from recordings when nothing changed."""

    def __init__(self, inner: LLMProvider, recordings: Recordings) -> None:
        self.inner = inner
        self.recordings = recordings
        self.name = inner.name
        self.web_enabled = getattr(inner, "web_enabled", False)
        self.reused: list[str] = []  # step ids answered from a recording

    def analyze(self, task: AnalysisTask) -> AnalysisResult:
        return self._recorded("analysis", task, AnalysisResult) or self.inner.analyze(task)

    def generate(self, task: GenerationTask) -> GenerationResult:
        return self._recorded("generation", task, GenerationResult) or self.inner.generate(task)

    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        return self._recorded("evaluation", task, EvaluationResult) or self.inner.evaluate(task)

    def prompt_ref(self, stage: str) -> str:
        return self._versions().prompt_ref(stage)

    def check(self) -> None:
        self.inner.check()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # contextualize(), triage_model, ...
        return getattr(self.inner, name)

    def _versions(self) -> _Versioned:
        if not callable(getattr(self.inner, "prompt_ref", None)):
            raise ConfigError(f"the {self.inner.name} provider does not report prompt versions")
        return self.inner  # type: ignore[return-value]

    def _recorded(self, stage: str, task: TaskEnvelope, model: type[R]) -> R | None:
        recorded = self.recordings.get((stage, input_fingerprint(task.to_dict())))
        if recorded is None or recorded.get("prompt_version") != self.prompt_ref(stage):
            return None
        self.reused.append(task.step_id)
        return model.model_validate({**recorded, "job_id": task.job_id, "step_id": task.step_id})


__all__ = ["Recordings", "ReplayingProvider", "load_recordings"]

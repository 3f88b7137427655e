"""Evaluation: score the answer and accept it, or send it back with feedback."""

from __future__ import annotations

from schemas import EvaluationResult, EvaluationTask
from workers.ports import Deps


def handle(msg: EvaluationTask, deps: Deps) -> EvaluationResult:
    return deps.provider.evaluate(msg)

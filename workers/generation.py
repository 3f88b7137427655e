"""Generation: a grounded answer (or email draft) with citations to the chunks it used."""

from __future__ import annotations

from schemas import GenerationResult, GenerationTask
from workers.ports import Deps


def handle(msg: GenerationTask, deps: Deps) -> GenerationResult:
    return deps.provider.generate(msg)

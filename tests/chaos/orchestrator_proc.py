"""The real ``ragrelay orchestrator`` process, with a test-only dispatcher wrapped around it.

``python -m tests.chaos.orchestrator_proc duplicate``: every task is published twice (the
same task id and payload), as a broker that delivers twice would.
``python -m tests.chaos.orchestrator_proc die-before:STAGE``: the process SIGKILLs itself
just before publishing the first STAGE task — after the transition that decided it was
committed, before the task left: the "crash between result and next dispatch" window.
Everything else is the production code path (``orchestrator.loop.run_loop``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from contextlib import AbstractContextManager
from typing import Any

from celery import Celery

import orchestrator.loop as loop
from bus.dispatch import CeleryDispatcher, Dispatcher


class DuplicatingDispatcher:
    def __init__(self, app: Celery) -> None:
        self.inner = CeleryDispatcher(app)

    def send(
        self, stage: str, payload: dict[str, Any], *, task_id: str, headers: dict[str, Any]
    ) -> None:
        for _ in range(2):
            self.inner.send(stage, payload, task_id=task_id, headers=headers)

    def batch(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # one publish per send, as the scenario needs


class DyingDispatcher:
    def __init__(self, app: Celery, stage: str) -> None:
        self.inner = CeleryDispatcher(app)
        self.stage = stage

    def send(
        self, stage: str, payload: dict[str, Any], *, task_id: str, headers: dict[str, Any]
    ) -> None:
        if stage == self.stage:
            sys.stderr.write(f"chaos: dying before dispatching {task_id}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        self.inner.send(stage, payload, task_id=task_id, headers=headers)

    def batch(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # publish before the kill, as the scenario needs


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else ""
    factory: Any
    if mode == "duplicate":
        factory = DuplicatingDispatcher
    elif mode.startswith("die-before:"):
        stage = mode.partition(":")[2]

        def factory(app: Celery) -> Dispatcher:
            return DyingDispatcher(app, stage)
    else:
        raise SystemExit(f"usage: orchestrator_proc duplicate|die-before:STAGE (got {mode!r})")
    # run_loop builds its dispatcher from this module global: swap in the test wrapper.
    setattr(loop, "CeleryDispatcher", factory)  # noqa: B010 - not re-exported by loop
    from ragrelay.cli.app import main as cli_main

    sys.argv = ["ragrelay", "orchestrator"]
    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])

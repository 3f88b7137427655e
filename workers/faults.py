"""Fault injection for chaos and integration tests, off unless ``RAGRELAY_FAULTS`` is set.

Spec: comma-separated ``stage=kind[:n]``. Kinds:
  transient:N  the first N attempts of each step raise TransientError
  permanent:N  the first N attempts of each step raise PermanentError
  crash:N      the first N attempts raise a plain exception (a handler bug)
  sleep:S      every attempt sleeps S seconds first (a slow or stuck step)
  stall:S      attempts from a job's second iteration on sleep S seconds first (the first
               answer comes at once, every revision is slow: a deadline falls between)
  exit:N       the first N attempts kill the worker process (os._exit) mid-step
  revise       (evaluation only) every verdict is ``revise``
  reread       (evaluation only) every verdict is ``reread`` (generate again, same context)
Attempts are counted per step id in Redis, so the count holds across worker processes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import redis

from bus.errors import ConfigError, PermanentError, TransientError
from bus.keys import Keys

KINDS = ("transient", "permanent", "crash", "sleep", "stall", "exit", "revise", "reread")
VERDICTS = ("revise", "reread")  # kinds that replace the evaluation's verdict


@dataclass(frozen=True)
class Fault:
    kind: str
    amount: float = 1.0


def parse_faults(spec: str | None) -> dict[str, Fault]:
    faults: dict[str, Fault] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        stage, _, rest = part.partition("=")
        kind, _, amount = rest.partition(":")
        if not stage or kind not in KINDS:
            raise ConfigError(
                f"RAGRELAY_FAULTS: cannot read {part!r}; expected stage=kind[:n] with kind in "
                + ", ".join(KINDS)
            )
        try:
            faults[stage.strip()] = Fault(kind, float(amount) if amount else 1.0)
        except ValueError as exc:
            raise ConfigError(f"RAGRELAY_FAULTS: {amount!r} is not a number in {part!r}") from exc
    return faults


class FaultInjector:
    def __init__(self, faults: dict[str, Fault], client: redis.Redis, keys: Keys) -> None:
        self.faults = faults
        self.client = client
        self.keys = keys

    def before(self, stage: str, msg: Any) -> None:
        fault = self.faults.get(stage)
        if fault is None or fault.kind in VERDICTS:
            return
        if fault.kind == "sleep":
            time.sleep(fault.amount)
            return
        if fault.kind == "stall":
            if getattr(msg, "iteration", 1) > 1:
                time.sleep(fault.amount)
            return
        step = getattr(msg, "step_id", None) or getattr(msg, "run_id", "ingest")
        counter = f"{self.keys.prefix}:faults:{step}"
        n = int(self.client.incr(counter))
        self.client.expire(counter, 3600)
        if n > fault.amount:
            return
        if fault.kind == "transient":
            raise TransientError(f"injected transient fault {n}/{int(fault.amount)}")
        if fault.kind == "permanent":
            raise PermanentError(f"injected permanent fault {n}/{int(fault.amount)}")
        if fault.kind == "crash":
            raise RuntimeError(f"injected crash {n}/{int(fault.amount)}")
        if fault.kind == "exit":
            os._exit(17)

    def after(self, stage: str, result: Any) -> Any:
        fault = self.faults.get(stage)
        if fault is not None and fault.kind in VERDICTS and hasattr(result, "verdict"):
            result.verdict = fault.kind
            result.feedback = result.feedback or f"injected: always {fault.kind}"
        return result

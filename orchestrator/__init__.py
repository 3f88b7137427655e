"""The orchestrator: job state, the pure state machine, budgets, fan-in, sweeper, ingress."""

from orchestrator.machine import MachineConfig, Transition, advance
from orchestrator.state import JobState

__all__ = ["JobState", "MachineConfig", "Transition", "advance"]

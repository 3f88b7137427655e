"""What a chaos scenario records for the ledger summary, and the test timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.ledger import LedgerReport

LEDGER_ENV = "RAGRELAY_CHAOS_LEDGER"

# Timings sized for tests: a SIGKILLed task comes back after ~5 s, a silent step after 3 s.
FAST_ENV = {
    "RAGRELAY_VISIBILITY_TIMEOUT_S": "5",
    "RAGRELAY_UNACKED_RESTORE_INTERVAL_S": "1",
    "RAGRELAY_STEP_TIMEOUT_S": "6",
    "RAGRELAY_SWEEP_INTERVAL_S": "0.5",
    "RAGRELAY_STEP_MAX_ATTEMPTS": "3",
    "RAGRELAY_BACKOFF_BASE_S": "0.05",
    "RAGRELAY_BACKOFF_MAX_S": "0.5",
    "RAGRELAY_RESULT_TTL_S": "600",
    "RAGRELAY_LOG_LEVEL": "INFO",
    # Reliability, not retrieval quality, is under test: the cheap deterministic embedder
    # keeps the model's CPU time out of 2-core timings (ingest and queries both use it).
    "RAGRELAY_EMBEDDER": "hashing",
}
MAX_TTL_S = 3600  # the fault counters' TTL; every other key carries RESULT_TTL_S


@dataclass
class ScenarioRecord:
    name: str
    jobs: int = 0
    final_results: int = 0
    lost: int = 0
    duplicated_effects: int = 0
    dead_lettered: int = 0
    kills: int = 0
    redis_restarts: int = 0
    figures: dict[str, Any] = field(default_factory=dict)

    def add_ledger(self, report: LedgerReport) -> None:
        self.jobs += report.jobs
        self.final_results += report.final_results
        self.lost += len(report.lost)
        self.duplicated_effects += report.duplicated_effects
        self.dead_lettered = max(self.dead_lettered, report.dead_lettered)
        self.figures.setdefault("statuses", {}).update(report.statuses)
        self.figures.setdefault("stop_reasons", {}).update(report.stop_reasons)
        if report.orphans:
            self.figures["orphans"] = report.orphans[:10]

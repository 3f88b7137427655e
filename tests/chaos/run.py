"""``make chaos``: run every chaos scenario, then print the ledger summary as the last line.

    python -m tests.chaos.run [--ledger PATH] [pytest args...]

Each scenario appends its ledger (jobs, final results, lost, duplicated effects, dead
letters, kills, Redis restarts, figures) to PATH; the summary sums them:

    {"jobs": N, "final_results": N, "lost": 0, "duplicated_effects": 0, "dead_lettered": K,
     "kills": M, "redis_restarts": R, "scenarios_passed": S, "scenarios": S}

The exit status is pytest's, or 1 when the ledger shows a lost job or a duplicated effect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.chaos.record import LEDGER_ENV

SUMMARY_KEYS = (
    "jobs",
    "final_results",
    "lost",
    "duplicated_effects",
    "dead_lettered",
    "kills",
    "redis_restarts",
)


def summarise(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Sum the per-scenario ledgers. Pure."""
    out = dict.fromkeys(SUMMARY_KEYS, 0)
    out.update(scenarios_passed=0, scenarios=0)
    for rec in records:
        for key in SUMMARY_KEYS:
            out[key] += int(rec.get(key, 0) or 0)
        out["scenarios"] += 1
        out["scenarios_passed"] += bool(rec.get("passed"))
    return out


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    ledger = Path(tempfile.gettempdir()) / "ragrelay-chaos" / "ledger.jsonl"
    if argv[:1] == ["--ledger"]:
        ledger, argv = Path(argv[1]), argv[2:]
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.unlink(missing_ok=True)
    env = dict(os.environ, **{LEDGER_ENV: str(ledger.resolve())})
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "chaos",
        "-p",
        "no:cacheprovider",
        "tests/chaos",
        *argv,
    ]
    code = subprocess.call(cmd, env=env)
    records = read_ledger(ledger)
    print(f"chaos ledger: {ledger}", file=sys.stderr)
    for rec in records:
        status = "passed" if rec.get("passed") else "FAILED"
        figures = json.dumps(rec.get("figures", {}), sort_keys=True)
        print(
            f"chaos {status}: {rec['name']}: jobs={rec['jobs']} lost={rec['lost']} "
            f"dup={rec['duplicated_effects']} kills={rec['kills']} "
            f"restarts={rec['redis_restarts']} {figures}",
            file=sys.stderr,
        )
    summary = summarise(records)
    sys.stdout.flush()
    print(json.dumps(summary), flush=True)
    if summary["lost"] or summary["duplicated_effects"]:
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

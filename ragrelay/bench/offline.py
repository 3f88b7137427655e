"""The real stage handlers with the offline provider, for ``bench overhead --stages offline``:
the sample corpus ingested into the run's data dir (embedded ingest, no broker needed)."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

from ragrelay.bench.measure import BENCH_TENANT, BenchError
from ragrelay.bench.run import BenchRun


def ingest_sample(run: BenchRun) -> None:
    """Index ragrelay's sample corpus for the bench tenant where the workers will read it."""
    env = run.child_env()
    env.pop("RAGRELAY_REDIS_URL", None)  # embedded ingest into RAGRELAY_DATA_DIR
    corpus = resources.files("ragrelay").joinpath("sample", "corpus.jsonl")
    out = subprocess.run(
        [sys.executable, "-m", "ragrelay", "ingest", str(corpus), "--tenant", BENCH_TENANT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(f"ingesting the sample corpus failed: {out.stderr[-1500:]}")

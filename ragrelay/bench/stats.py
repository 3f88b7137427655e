"""Pure arithmetic of the benchmarks: percentiles, summaries, ratios, Little's law."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarise(latencies_s: Sequence[float], elapsed_s: float) -> dict[str, Any]:
    """Throughput and latency percentiles (ms) of one measured run."""
    n = len(latencies_s)
    return {
        "jobs": n,
        "elapsed_s": round(elapsed_s, 3),
        "jobs_per_s": round(n / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "p50_ms": round(percentile(latencies_s, 50) * 1000, 2),
        "p90_ms": round(percentile(latencies_s, 90) * 1000, 2),
        "p99_ms": round(percentile(latencies_s, 99) * 1000, 2),
        "mean_ms": round(sum(latencies_s) / n * 1000, 2) if n else 0.0,
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator > 0 else 0.0


def littles_bound(inflight: int, per_job_latency_s: float) -> float:
    """Little's law: the most jobs/s ``inflight`` concurrent jobs of this latency can finish."""
    return inflight / per_job_latency_s if per_job_latency_s > 0 else 0.0


def parse_counts(spec: str, kinds: Sequence[str], default: int = 1) -> dict[str, int]:
    """``analysis=2,retrieval=4`` → a count per kind (``default`` for those not named)."""
    counts = dict.fromkeys(kinds, default)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, amount = part.partition("=")
        kind = kind.strip()
        if kind not in counts or not amount.strip().isdigit() or int(amount) < 1:
            raise ValueError(f"expected KIND=N (N >= 1) with KIND in {', '.join(kinds)}: {part!r}")
        counts[kind] = int(amount)
    return counts

"""Prompt (or config) A/B on the same questions: paired bootstrap confidence intervals.

Two runs answer the same questions, A under one prompt version or setting and B under
another. For a metric, each question gives a pair (a_i, b_i); the difference of means is
``mean(b - a)`` and its confidence interval comes from resampling *questions* with
replacement (the paired bootstrap: a hard question stays hard in both arms, so the interval
is much tighter than comparing two independent means). Percentile intervals; a seeded
``random.Random`` makes every figure reproducible. Pure: no I/O, no numpy needed.

``parse_prompt_versions(["generation=2"])`` reads the ``--prompt-version NAME=VERSION``
flags of ``ragrelay eval qa``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bus.errors import UsageError
from ragrelay.observe.flags import parse_prompt_versions


@dataclass(frozen=True)
class Comparison:
    metric: str
    n: int  # questions present in both runs
    mean_a: float
    mean_b: float
    diff: float  # mean(b - a)
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float  # two-sided, from the bootstrap distribution of the difference
    wins: int  # questions where b > a
    losses: int  # questions where b < a
    ties: int
    higher_is_better: bool = True  # False for latency, cost, tokens

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def verdict(self) -> str:
        if not self.significant:
            return "no significant difference"
        return "B better" if (self.diff > 0) == self.higher_is_better else "A better"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant, "verdict": self.verdict}


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    metric: str = "metric",
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool = True,
) -> Comparison:
    """Confidence interval of ``mean(b) - mean(a)`` over paired observations."""
    if len(a) != len(b):
        raise UsageError(f"{metric}: paired runs need the same questions ({len(a)} vs {len(b)})")
    if not a:
        raise UsageError(f"{metric}: no questions to compare")
    if not 0 < confidence < 1:
        raise UsageError("confidence must be between 0 and 1")
    if resamples < 1:
        raise UsageError("resamples must be at least 1")
    n = len(a)
    diffs = [float(y) - float(x) for x, y in zip(a, b, strict=True)]
    observed = sum(diffs) / n
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    alpha = (1 - confidence) / 2
    # two-sided p from the same distribution as the interval: twice the smaller tail beyond 0
    below = sum(1 for m in means if m <= 0)
    above = sum(1 for m in means if m >= 0)
    p_value = min(1.0, 2 * (min(below, above) + 1) / (resamples + 1))
    return Comparison(
        metric=metric,
        n=n,
        mean_a=sum(map(float, a)) / n,
        mean_b=sum(map(float, b)) / n,
        diff=observed,
        ci_low=_quantile(means, alpha),
        ci_high=_quantile(means, 1 - alpha),
        confidence=confidence,
        p_value=p_value,
        wins=sum(1 for d in diffs if d > 0),
        losses=sum(1 for d in diffs if d < 0),
        ties=sum(1 for d in diffs if d == 0),
        higher_is_better=higher_is_better,
    )


def pair_rows(
    rows_a: Iterable[Mapping[str, Any]], rows_b: Iterable[Mapping[str, Any]], metric: str
) -> tuple[list[float], list[float]]:
    """The metric's values for the questions (by ``id``) both runs have, in id order.
    A row's value is looked up in ``metrics``, then ``scores``, then at the top level."""

    def values(rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for row in rows:
            value = _lookup(row, metric)
            if value is not None:
                out[str(row["id"])] = value
        return out

    va, vb = values(rows_a), values(rows_b)
    common = sorted(va.keys() & vb.keys())
    return [va[k] for k in common], [vb[k] for k in common]


def _lookup(row: Mapping[str, Any], metric: str) -> float | None:
    for part in ("metrics", "scores"):
        found = (row.get(part) or {}).get(metric)
        if found is not None:
            return float(found)
    top = row.get(metric)
    return float(top) if isinstance(top, int | float) and not isinstance(top, bool) else None


LOWER_IS_BETTER = frozenset({"latency_s", "cost_usd", "tokens", "iterations"})


def compare_runs(
    rows_a: Sequence[Mapping[str, Any]],
    rows_b: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    lower_is_better: Iterable[str] = LOWER_IS_BETTER,
) -> list[Comparison]:
    """One Comparison per metric both runs report (seeded per metric for reproducibility)."""
    lower = set(lower_is_better)
    out = []
    for i, metric in enumerate(metrics):
        a, b = pair_rows(rows_a, rows_b, metric)
        if a:
            out.append(
                paired_bootstrap(
                    a,
                    b,
                    metric=metric,
                    resamples=resamples,
                    confidence=confidence,
                    seed=seed + i,
                    higher_is_better=metric not in lower,
                )
            )
    return out


def render_comparisons(
    comparisons: Sequence[Comparison], *, label_a: str = "A", label_b: str = "B"
) -> str:
    """A Markdown table of the comparisons."""
    lines = [
        f"A = {label_a}, B = {label_b}",
        "",
        "| metric | n | A | B | B - A | CI | p | wins/losses/ties | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.metric} | {c.n} | {c.mean_a:.4f} | {c.mean_b:.4f} | {c.diff:+.4f} | "
            f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}] ({c.confidence:.0%}) | {c.p_value:.3g} | "
            f"{c.wins}/{c.losses}/{c.ties} | {c.verdict} |"
        )
    return "\n".join(lines) + "\n"


__all__ = [
    "LOWER_IS_BETTER",
    "Comparison",
    "compare_runs",
    "pair_rows",
    "paired_bootstrap",
    "parse_prompt_versions",
    "render_comparisons",
]

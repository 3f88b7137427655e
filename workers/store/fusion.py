"""Fusing ranked lists: reciprocal-rank fusion and normalised score fusion. Pure functions."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def rrf(
    rankings: Sequence[Sequence[K]], *, k: float = 60.0, weights: Sequence[float] | None = None
) -> dict[K, float]:
    """Reciprocal-rank fusion: ``sum_i w_i / (k + rank_i)`` with ranks starting at 1."""
    out: dict[K, float] = {}
    for i, ranking in enumerate(rankings):
        w = weights[i] if weights else 1.0
        for rank, key in enumerate(ranking, start=1):
            out[key] = out.get(key, 0.0) + w / (k + rank)
    return out


def normalized_fusion(
    scored: Sequence[Mapping[K, float]], *, weights: Sequence[float] | None = None
) -> dict[K, float]:
    """Convex combination of min-max normalised scores (a key missing from a list gets 0)."""
    out: dict[K, float] = {}
    for i, scores in enumerate(scored):
        if not scores:
            continue
        w = weights[i] if weights else 1.0
        lo, hi = min(scores.values()), max(scores.values())
        span = hi - lo
        for key, s in scores.items():
            norm = (s - lo) / span if span > 0 else 1.0
            out[key] = out.get(key, 0.0) + w * norm
    return out


def ranked(scores: Mapping[K, float]) -> list[K]:
    return sorted(scores, key=lambda key: -scores[key])


def zscore_fusion(
    scored: Sequence[Mapping[K, float]], *, weights: Sequence[float] | None = None
) -> dict[K, float]:
    """Sum of standardised scores (each list's mean 0, deviation 1; missing keys get the
    list's minimum), which keeps how far a top hit stands out from the rest."""
    out: dict[K, float] = {}
    keys = {key for scores in scored for key in scores}
    for i, scores in enumerate(scored):
        if not scores:
            continue
        w = weights[i] if weights else 1.0
        values = list(scores.values())
        mu = sum(values) / len(values)
        sd = (sum((v - mu) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
        floor = min(values)
        for key in keys:
            out[key] = out.get(key, 0.0) + w * (scores.get(key, floor) - mu) / sd
    return out

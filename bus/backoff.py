"""Retry delays: exponential backoff with full jitter, honouring a server's ``retry-after``."""

from __future__ import annotations

import random


def compute_backoff(
    attempts: int,
    *,
    base: float = 0.5,
    factor: float = 2.0,
    maximum: float = 30.0,
    jitter: bool = True,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempts`` (1-based).

    Without jitter: ``base * factor**(attempts-1)`` capped at ``maximum``. With jitter the
    delay is drawn uniformly from ``[delay/2, delay]`` so a herd of retries spreads out but
    never collapses to zero. A server's ``retry_after`` is a floor (still capped).
    """
    if attempts < 1:
        raise ValueError("attempts starts at 1")
    delay = min(maximum, base * factor ** (attempts - 1))
    if jitter:
        delay = (rng or random).uniform(delay / 2, delay)
    if retry_after is not None:
        delay = max(delay, min(maximum, retry_after))
    return delay

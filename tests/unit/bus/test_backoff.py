import random

import pytest

from bus.backoff import compute_backoff


def test_backoff_grows_exponentially_without_jitter() -> None:
    delays = [compute_backoff(n, base=0.5, maximum=100, jitter=False) for n in range(1, 6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_is_capped() -> None:
    assert compute_backoff(30, base=1, maximum=10, jitter=False) == 10


def test_jitter_stays_between_half_and_full_delay() -> None:
    rng = random.Random(7)
    for n in range(1, 8):
        full = compute_backoff(n, base=1, maximum=60, jitter=False)
        d = compute_backoff(n, base=1, maximum=60, rng=rng)
        assert full / 2 <= d <= full


def test_retry_after_is_a_floor_but_still_capped() -> None:
    assert compute_backoff(1, base=0.5, jitter=False, retry_after=7) == 7
    assert compute_backoff(1, base=0.5, maximum=5, jitter=False, retry_after=70) == 5


def test_attempts_start_at_one() -> None:
    with pytest.raises(ValueError):
        compute_backoff(0)

"""Paired bootstrap for prompt A/B, and the --prompt-version flag."""

from __future__ import annotations

import random

import pytest

from bus.errors import UsageError
from ragrelay.evals.ab import (
    compare_runs,
    pair_rows,
    paired_bootstrap,
    parse_prompt_versions,
    render_comparisons,
)


def test_a_clear_improvement_has_an_interval_above_zero() -> None:
    rng = random.Random(1)
    a = [rng.random() for _ in range(200)]
    b = [min(1.0, x + 0.1 + rng.gauss(0, 0.05)) for x in a]
    c = paired_bootstrap(a, b, metric="f1", resamples=2000)
    assert c.n == 200 and c.significant and c.verdict == "B better"
    assert 0 < c.ci_low < c.diff < c.ci_high
    assert c.p_value < 0.01
    assert c.wins > c.losses


def test_identical_runs_have_no_difference() -> None:
    a = [0.1, 0.5, 0.9, 0.3]
    c = paired_bootstrap(a, list(a), resamples=500)
    assert (c.diff, c.ci_low, c.ci_high, c.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not c.significant and c.ties == 4


def test_noise_alone_is_not_significant_and_pairing_tightens_the_interval() -> None:
    rng = random.Random(7)
    base = [rng.random() for _ in range(100)]
    a = [x + rng.gauss(0, 0.02) for x in base]
    b = [x + rng.gauss(0, 0.02) for x in base]
    paired = paired_bootstrap(a, b, resamples=2000)
    assert not paired.significant
    # unpaired: shuffle b so the question difficulty no longer cancels out
    shuffled = paired_bootstrap(a, rng.sample(b, len(b)), resamples=2000)
    assert (paired.ci_high - paired.ci_low) < (shuffled.ci_high - shuffled.ci_low) / 5


def test_the_interval_matches_a_direct_computation_and_is_reproducible() -> None:
    a, b = [0.0, 0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0, 1.0]
    first = paired_bootstrap(a, b, resamples=3000, seed=3)
    assert first == paired_bootstrap(a, b, resamples=3000, seed=3)
    assert first.diff == pytest.approx(0.4)
    # the diffs are two 1s and three 0s: resampled means range over {0, .2, ..., 1}
    assert first.ci_low in {0.0, 0.2} and first.ci_high in {0.8, 1.0}


def test_unequal_or_empty_runs_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        paired_bootstrap([1.0], [1.0, 2.0])
    with pytest.raises(UsageError):
        paired_bootstrap([], [])
    with pytest.raises(UsageError):
        paired_bootstrap([1.0], [1.0], confidence=1.5)


def test_rows_pair_by_id_and_missing_questions_are_dropped() -> None:
    rows_a = [
        {"id": "q1", "metrics": {"f1": 0.5}},
        {"id": "q2", "scores": {"f1": 0.2}},
        {"id": "q3", "metrics": {"f1": 0.9}},
    ]
    rows_b = [
        {"id": "q2", "metrics": {"f1": 0.4}},
        {"id": "q1", "metrics": {"f1": 0.5}},
        {"id": "q4", "metrics": {"f1": 1.0}},
    ]
    assert pair_rows(rows_a, rows_b, "f1") == ([0.5, 0.2], [0.5, 0.4])
    comps = compare_runs(rows_a, rows_b, ["f1", "absent"], resamples=200)
    assert [c.metric for c in comps] == ["f1"]
    table = render_comparisons(comps, label_a="generation@v1", label_b="generation@v2")
    assert "generation@v2" in table and "| f1 | 2 |" in table


def test_prompt_version_flags() -> None:
    assert parse_prompt_versions(["generation=2", "evaluation=v1"]) == {
        "generation": 2,
        "evaluation": 1,
    }
    for bad in (["generation"], ["=2"], ["generation=two"], ["g=1", "g=2"]):
        with pytest.raises(UsageError):
            parse_prompt_versions(bad)


def test_lower_is_better_metrics_flip_the_verdict() -> None:
    rows_a = [{"id": f"q{i}", "latency_s": 0.1 * (i % 5 + 1)} for i in range(50)]
    rows_b = [{"id": f"q{i}", "latency_s": 0.1 * (i % 5 + 1) + 0.2} for i in range(50)]
    (c,) = compare_runs(rows_a, rows_b, ["latency_s"], resamples=500)
    assert c.diff > 0 and c.significant and c.verdict == "A better"


def test_p_value_agrees_with_the_interval() -> None:
    rng = random.Random(11)
    for shift in (0.0, 0.01, 0.03, 0.1):
        a = [rng.random() for _ in range(80)]
        b = [x + shift + rng.gauss(0, 0.05) for x in a]
        c = paired_bootstrap(a, b, resamples=2000, seed=5)
        assert c.significant == (c.p_value < 0.05) or abs(c.p_value - 0.05) < 0.01

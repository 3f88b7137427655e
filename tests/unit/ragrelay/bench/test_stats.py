"""The benchmarks' arithmetic: percentiles, summaries, Little's law, --workers parsing."""

from __future__ import annotations

import pytest

from ragrelay.bench.driver import describe
from ragrelay.bench.stats import littles_bound, parse_counts, percentile, ratio, summarise


def test_percentile_interpolates_and_handles_edges() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0


def test_summarise_reports_throughput_and_latency_in_ms() -> None:
    s = summarise([0.010, 0.020, 0.030, 0.040], elapsed_s=2.0)
    assert s["jobs"] == 4
    assert s["jobs_per_s"] == 2.0
    assert s["p50_ms"] == pytest.approx(25.0)
    assert s["mean_ms"] == pytest.approx(25.0)


def test_littles_law_bound_and_ratio() -> None:
    assert littles_bound(200, 2.4) == pytest.approx(83.33, abs=0.01)
    assert littles_bound(10, 0.0) == 0.0
    assert ratio(75.0, 83.333) == 0.9
    assert ratio(1.0, 0.0) == 0.0


def test_parse_counts_defaults_and_rejects_unknown_kinds() -> None:
    kinds = ("analysis", "retrieval")
    assert parse_counts("", kinds) == {"analysis": 1, "retrieval": 1}
    assert parse_counts("retrieval=4", kinds) == {"analysis": 1, "retrieval": 4}
    for bad in ("embedding=2", "analysis=0", "analysis=x", "analysis"):
        with pytest.raises(ValueError, match="KIND=N"):
            parse_counts(bad, kinds)


def test_describe_reads_a_job_result_and_a_chain_result() -> None:
    job = b'{"status": "SUCCESS", "result": {"status": "succeeded", "usage": {"llm_calls": 3}}}'
    assert describe(job) == ("succeeded", 3)
    assert describe(b'{"status": "SUCCESS", "result": {"query": "q"}}') == ("SUCCESS", 0)
    assert describe(b"not json") == ("unreadable", 0)

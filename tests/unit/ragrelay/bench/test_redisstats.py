"""Redis counters per job (pure) and the --orchestrators parser."""

from __future__ import annotations

import click
import pytest

from ragrelay.bench.redisstats import RedisCounters
from ragrelay.cli.bench import _replicas


def test_deltas_and_sums_per_job() -> None:
    before = RedisCounters({"xadd": 10, "get": 5}, 1000, 2000)
    after = RedisCounters({"xadd": 30, "get": 5, "evalsha": 10}, 3000, 6000)
    delta = after - before
    assert delta.calls == {"xadd": 20, "evalsha": 10}
    total = delta + delta
    assert total.per_job(10) == {
        "redis_commands_per_job": 6.0,
        "redis_commands_per_job_by_command": {"xadd": 4.0, "evalsha": 2.0},
        "redis_net_in_bytes_per_job": 400,
        "redis_net_out_bytes_per_job": 800,
    }


def test_replica_counts_parse_and_bad_ones_name_the_option() -> None:
    assert _replicas("1,2,4") == [1, 2, 4]
    assert _replicas("2") == [2]
    for bad in ("0", "1,x", "", "65"):
        with pytest.raises(click.BadParameter, match="N from 1 to 64"):
            _replicas(bad)

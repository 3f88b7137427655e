"""What Redis did during a measurement: commands by name and bytes on the wire (INFO deltas).

Commands a Lua script runs are counted by Redis under their own names besides the
``evalsha`` that ran them, so ``commands`` is work done by the server, not round trips.
Everything that talks to the server in the interval is counted: the system under test, the
harness's submit and completion reads, and the idle polling of a fleet not being measured
(small beside a slice's thousands of jobs; docs/deployment.md, "Capacity model").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis


@dataclass
class RedisCounters:
    calls: dict[str, int] = field(default_factory=dict)
    net_in_bytes: int = 0
    net_out_bytes: int = 0

    def __sub__(self, other: RedisCounters) -> RedisCounters:
        calls = {k: v - other.calls.get(k, 0) for k, v in self.calls.items()}
        return RedisCounters(
            {k: v for k, v in calls.items() if v > 0},
            self.net_in_bytes - other.net_in_bytes,
            self.net_out_bytes - other.net_out_bytes,
        )

    def __add__(self, other: RedisCounters) -> RedisCounters:
        calls = dict(self.calls)
        for k, v in other.calls.items():
            calls[k] = calls.get(k, 0) + v
        return RedisCounters(
            calls, self.net_in_bytes + other.net_in_bytes, self.net_out_bytes + other.net_out_bytes
        )

    def per_job(self, jobs: int, *, top: int = 10) -> dict[str, Any]:
        """Per-job figures for a benchmark line. Pure."""
        n = max(1, jobs)
        ranked = sorted(self.calls.items(), key=lambda kv: (-kv[1], kv[0]))
        return {
            "redis_commands_per_job": round(sum(self.calls.values()) / n, 2),
            "redis_commands_per_job_by_command": {k: round(v / n, 2) for k, v in ranked[:top]},
            "redis_net_in_bytes_per_job": round(self.net_in_bytes / n),
            "redis_net_out_bytes_per_job": round(self.net_out_bytes / n),
        }


def snapshot(client: redis.Redis) -> RedisCounters:
    """The server's counters now (INFO commandstats and stats)."""
    stats: Any = client.info("commandstats")
    calls: dict[str, int] = {}
    for name, row in stats.items():
        if isinstance(row, dict) and "calls" in row and name != "cmdstat_info":  # our own
            calls[str(name).removeprefix("cmdstat_")] = int(row["calls"])
    net: Any = client.info("stats")
    return RedisCounters(
        calls, int(net.get("total_net_input_bytes", 0)), int(net.get("total_net_output_bytes", 0))
    )

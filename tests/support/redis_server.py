"""A private redis-server on a free loopback port, for one test session: the benchmark's
:class:`orchestrator.bench.procs.PrivateRedis` (``appendonly=True`` for durability tests)."""

from __future__ import annotations

from orchestrator.bench.procs import PrivateRedis as RedisServer
from orchestrator.bench.procs import free_port

__all__ = ["RedisServer", "free_port"]

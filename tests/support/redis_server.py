"""A private redis-server on a free loopback port, for one test session: the benchmark's
:class:`ragrelay.bench.procs.PrivateRedis` (``appendonly=True`` for durability tests)."""

from __future__ import annotations

from ragrelay.bench.procs import PrivateRedis as RedisServer
from ragrelay.bench.procs import free_port

__all__ = ["RedisServer", "free_port"]

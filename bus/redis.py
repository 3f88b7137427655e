"""Redis connections: a real server when configured, else one in-process fakeredis server."""

from __future__ import annotations

import threading
from typing import Any

import redis

from bus.errors import ConfigError
from bus.settings import Settings

_FAKE_SERVER: Any = None
_LOCK = threading.Lock()

Redis = redis.Redis


def fake_server() -> Any:
    """The process-wide fakeredis server of the embedded mode (Lua and streams included)."""
    global _FAKE_SERVER
    with _LOCK:
        if _FAKE_SERVER is None:
            import fakeredis

            _FAKE_SERVER = fakeredis.FakeServer()
        return _FAKE_SERVER


def connect(settings: Settings) -> redis.Redis:
    """A client for job state and events. Embedded mode shares one in-process server."""
    if settings.redis_url:
        try:
            return redis.Redis.from_url(
                settings.redis_url,
                decode_responses=False,
                health_check_interval=30,
                socket_keepalive=True,
                retry_on_timeout=True,
            )
        except ValueError as exc:
            raise ConfigError(
                f"RAGRELAY_REDIS_URL is not a Redis URL ({exc}); use redis://host:6379/0"
            ) from exc
    import fakeredis

    client: redis.Redis = fakeredis.FakeRedis(server=fake_server())
    return client


def ping(client: redis.Redis, url: str | None) -> None:
    """Fail with an actionable message when Redis is not reachable."""
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        raise ConfigError(
            f"cannot reach Redis at {url}: {exc}. Start redis-server, or unset "
            "RAGRELAY_REDIS_URL to run embedded in one process."
        ) from exc

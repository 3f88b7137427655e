"""Redis connections: a real server when configured, else one in-process fakeredis server.

Every client is built from :class:`bus.redis_url.RedisUrl` (TLS options included), and every
failure to reach Redis becomes one :class:`ConfigError` line that names the URL without its
password and says what to do (:func:`describe_redis_error`).
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

import redis
import redis.asyncio as aioredis

from bus.errors import ConfigError
from bus.redaction import display_url, redact_secrets
from bus.redis_url import RedisUrl
from bus.sentinel_url import SentinelUrl, is_sentinel
from bus.settings import Settings

_FAKE_SERVER: Any = None
_LOCK = threading.Lock()
# Connecting includes the TLS handshake, which would wait forever on a plain-text port.
CONNECT_TIMEOUT_S = 10.0

Redis = redis.Redis
SETTING = "RAGRELAY_REDIS_URL"


def fake_server() -> Any:
    """The process-wide fakeredis server of the embedded mode (Lua and streams included)."""
    global _FAKE_SERVER
    with _LOCK:
        if _FAKE_SERVER is None:
            import fakeredis

            _FAKE_SERVER = fakeredis.FakeServer()
        return _FAKE_SERVER


def client_for_url(url: str, **options: Any) -> redis.Redis:
    """A redis-py client for ``url`` (``redis://``, ``rediss://`` with its ``ssl_*`` options);
    ``options`` are defaults the URL's own options override."""
    if is_sentinel(url):  # the Sentinels name the primary, again after a failover
        return SentinelUrl.parse(url).client(
            **{"socket_connect_timeout": CONNECT_TIMEOUT_S, **options}
        )
    target = RedisUrl.parse(url)
    try:
        return redis.Redis.from_url(
            target.url,
            **{"socket_connect_timeout": CONNECT_TIMEOUT_S, **options, **target.client_kwargs()},
        )
    except ValueError as exc:
        raise ConfigError(
            f"{SETTING}={target.display} is not a Redis URL "
            f"({redact_secrets(str(exc))}); use redis://host:6379/0"
        ) from exc


def connect(settings: Settings) -> redis.Redis:
    """A client for job state and events. Embedded mode shares one in-process server."""
    if settings.redis_url:
        return client_for_url(
            settings.redis_url,
            decode_responses=False,
            health_check_interval=30,
            socket_keepalive=True,
            retry_on_timeout=True,
        )
    import fakeredis

    client: redis.Redis = fakeredis.FakeRedis(server=fake_server())
    return client


def connect_async(
    settings: Settings,
    *,
    max_connections: int | None = None,
    pool_timeout_s: float = 10,
    client_name: str | None = None,
) -> aioredis.Redis:
    """The asyncio client of the same Redis (the gateway's SSE and rate limits). With
    ``max_connections``, a blocking pool of that size: a caller that finds it empty waits up
    to ``pool_timeout_s`` for a connection instead of opening another."""
    if not settings.redis_url:
        raise ConfigError(f"an asyncio Redis client needs {SETTING}")
    if is_sentinel(settings.redis_url):
        return SentinelUrl.parse(settings.redis_url).async_client(
            health_check_interval=30,
            socket_keepalive=True,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            **({"client_name": client_name} if client_name is not None else {}),
        )
    target = RedisUrl.parse(settings.redis_url)
    options: dict[str, Any] = {
        "health_check_interval": 30,
        "socket_keepalive": True,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        **target.client_kwargs(),
    }
    if client_name is not None:
        options["client_name"] = client_name
    try:
        if max_connections is None:
            client: aioredis.Redis = aioredis.Redis.from_url(target.url, **options)
            return client
        pool = aioredis.BlockingConnectionPool.from_url(
            target.url, **{**options, "max_connections": max_connections, "timeout": pool_timeout_s}
        )
    except ValueError as exc:
        raise ConfigError(
            f"{SETTING}={target.display} is not a Redis URL "
            f"({redact_secrets(str(exc))}); use redis://host:6379/0"
        ) from exc
    pooled: aioredis.Redis = aioredis.Redis.from_pool(pool)
    return pooled


def ping(client: redis.Redis, url: str | None) -> None:
    """Fail with an actionable one-line message when Redis is not usable."""
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise ConfigError(describe_redis_error(exc, url)) from exc


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def describe_redis_error(exc: BaseException, url: str | None) -> str:
    """What went wrong reaching the Redis at ``url``, and what to do: one line, no password.

    Distinguishes a refused password, TLS failures (certificate, handshake, files), a refused
    connection, an unknown host and a timeout; anything else is reported as it came.
    """
    shown = display_url(url)
    tls = bool(url) and url.strip().lower().startswith("rediss://")  # type: ignore[union-attr]
    chain = _chain(exc)
    reason = redact_secrets(" ".join(str(exc).split())) or type(exc).__name__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, redis.exceptions.AuthenticationError) for e in chain) or any(
        code in text for code in ("NOAUTH", "WRONGPASS", "invalid password", "invalid username")
    ):
        return (
            f"Redis at {shown} refused the password: check {SETTING} "
            "(redis://:<password>@host:port/db, or redis://<user>:<password>@... for an ACL user)"
        )
    if any(isinstance(e, redis.exceptions.NoPermissionError) for e in chain):
        return (
            f"Redis at {shown} accepted the login but refused a command ({reason}): the "
            "ACL user needs ragrelay's keys and commands"
        )
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain):
        return (
            f"TLS to Redis at {shown} failed: the server's certificate did not verify "
            f"({reason}). Give its CA with ?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem "
            f"in {SETTING}, or check the host name"
        )
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return (
            f"TLS to Redis at {shown} failed ({reason}): does the server speak TLS on this "
            "port, and do ssl_certfile/ssl_keyfile match what it requires?"
        )
    if tls and any(
        isinstance(e, OSError)
        and e.errno is not None
        and not isinstance(e, ConnectionError | socket.gaierror | TimeoutError)
        for e in chain[1:]
    ):
        return (
            f"TLS set-up for Redis at {shown} failed: cannot read a file named by "
            f"ssl_ca_certs, ssl_certfile or ssl_keyfile in {SETTING} ({reason})"
        )
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return (
            f"cannot reach Redis at {shown}: connection refused. Start redis-server, or "
            f"unset {SETTING} to run embedded in one process"
        )
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"cannot reach Redis at {shown}: unknown host ({reason}). Check {SETTING}"
    if isinstance(exc, redis.exceptions.TimeoutError) or any(
        isinstance(e, TimeoutError) for e in chain
    ):
        hint = (
            "does the server speak TLS on this port? (redis:// for a plain one)"
            if tls
            else "is the host and port right, and reachable from here?"
        )
        return f"timed out connecting to Redis at {shown}: {hint}"
    reset = any(isinstance(e, ConnectionResetError) for e in chain) or "closed by server" in text
    if reset and not tls:
        return (
            f"Redis at {shown} closed the connection ({reason}): if it only accepts TLS, "
            f"use a rediss:// URL in {SETTING}"
        )
    if isinstance(exc, redis.exceptions.ConnectionError):
        return (
            f"cannot reach Redis at {shown}: {reason}. Start redis-server, or unset "
            f"{SETTING} to run embedded in one process"
        )
    return f"Redis at {shown} answered with an error: {reason}"

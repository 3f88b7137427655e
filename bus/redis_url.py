"""``RAGRELAY_REDIS_URL`` → the options of every Redis client ragrelay builds, in one place.

One URL feeds four clients that read its query options differently:

- redis-py (job state, events, API keys) and its asyncio client (the gateway) take
  ``ssl_cert_reqs=required|optional|none`` from a URL and reject ``CERT_REQUIRED``: that
  spelling, the one Celery documents, crashed the orchestrator;
- kombu (the Celery broker) takes either spelling, and turns a ``rediss://`` URL without
  options into ``CERT_NONE`` (no certificate check) with only a warning;
- Celery's Redis result backend refuses a ``rediss://`` URL without ``ssl_cert_reqs``;
- kombu passes any other query option (``socket_timeout=5``) to its ``Connection``, which
  fails with a TypeError.

So every query option is parsed here once into a typed value (an ``ssl.VerifyMode``, a
float, a bool) and handed to each client its own way: keyword arguments (redis-py), or
``broker_use_ssl`` / ``broker_transport_options`` / ``redis_backend_use_ssl`` /
``redis_*`` settings (Celery). The URL the clients see carries no query at all. An option
not listed here is refused at start-up. A ``rediss://`` URL without ``ssl_cert_reqs``
verifies the server's certificate in every client (redis-py's default), never silently
not. Pure: no I/O.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from bus.errors import ConfigError
from bus.redaction import display_url

SCHEMES = ("redis", "rediss", "unix")
CERT_REQS: Mapping[str, ssl.VerifyMode] = {
    "required": ssl.CERT_REQUIRED,
    "optional": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
}
# The ssl_* options a URL may carry, and how each is read. Paths stay strings.
SSL_OPTIONS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_check_hostname",
)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(value: str, name: str = "ssl_check_hostname") -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ConfigError(f"RAGRELAY_REDIS_URL: {name}={value!r} is not true or false")


# Other query options: (how to read it, kombu's transport option, Celery's backend setting).
CLIENT_OPTIONS: Mapping[str, tuple[Callable[[str], Any], str, str]] = {
    "socket_timeout": (float, "socket_timeout", "redis_socket_timeout"),
    "socket_connect_timeout": (float, "socket_connect_timeout", "redis_socket_connect_timeout"),
    "socket_keepalive": (
        lambda v: _flag(v, "socket_keepalive"),
        "socket_keepalive",
        "redis_socket_keepalive",
    ),
    "retry_on_timeout": (
        lambda v: _flag(v, "retry_on_timeout"),
        "retry_on_timeout",
        "redis_retry_on_timeout",
    ),
    "health_check_interval": (int, "health_check_interval", "redis_backend_health_check_interval"),
    "max_connections": (int, "max_connections", "redis_max_connections"),
    "client_name": (str, "client_name", "redis_client_name"),
}


def parse_cert_reqs(value: str) -> ssl.VerifyMode:
    """``CERT_REQUIRED`` / ``required`` (any case), ``CERT_OPTIONAL``, ``CERT_NONE``."""
    key = value.strip().lower().removeprefix("cert_")
    try:
        return CERT_REQS[key]
    except KeyError:
        raise ConfigError(
            f"RAGRELAY_REDIS_URL: ssl_cert_reqs={value!r} is not one of required, optional, "
            "none (or CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE)"
        ) from None


@dataclass(frozen=True)
class RedisUrl:
    """A parsed Redis URL: ``url`` without ``ssl_*`` options, and the TLS options apart."""

    url: str
    tls: bool = False
    ssl_options: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str) -> RedisUrl:
        shown = display_url(url)
        try:
            parts = urlsplit(url.strip())
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise ConfigError(
                f"RAGRELAY_REDIS_URL={shown} is not a Redis URL ({exc}); "
                "use redis://[:password@]host:6379/0"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ConfigError(
                f"RAGRELAY_REDIS_URL={shown} is not a Redis URL: use "
                "redis://[:password@]host:6379/0, rediss:// for TLS, or "
                "redis+sentinel://host:26379,host:26379/master_name for Sentinel"
            )
        raw: dict[str, str] = {}
        options: dict[str, Any] = {}
        path = parts.path
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in CLIENT_OPTIONS:
                options[name] = _read(name, value)
            elif name == "db" and value.isdigit():
                path = f"/{value}"
            else:
                raw[name] = value
        unknown = sorted(set(raw) - set(SSL_OPTIONS))
        if unknown:
            raise ConfigError(
                f"RAGRELAY_REDIS_URL: unsupported option {', '.join(unknown)}; the options are "
                f"db, {', '.join(CLIENT_OPTIONS)} and for rediss:// {', '.join(SSL_OPTIONS)}"
            )
        tls = scheme == "rediss"
        if raw and not tls:
            raise ConfigError(
                f"RAGRELAY_REDIS_URL={shown} has {', '.join(sorted(raw))} but no TLS: use a "
                "rediss:// URL for TLS"
            )
        tls_options: dict[str, Any] = {}
        if tls:
            tls_options["ssl_cert_reqs"] = parse_cert_reqs(raw.pop("ssl_cert_reqs", "required"))
            if "ssl_check_hostname" in raw:
                tls_options["ssl_check_hostname"] = _flag(raw.pop("ssl_check_hostname"))
            tls_options.update({k: v for k, v in raw.items() if v})
        clean = urlunsplit(parts._replace(path=path, query=""))
        return cls(url=clean, tls=tls, ssl_options=tls_options, options=options)

    @property
    def display(self) -> str:
        return display_url(self.url)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis.from_url(self.url, ...)`` (sync or asyncio)."""
        return {**self.options, **self.ssl_options}

    def celery_ssl(self) -> dict[str, Any] | None:
        """``broker_use_ssl`` / ``redis_backend_use_ssl``: None without TLS."""
        return dict(self.ssl_options) if self.tls else None

    def celery_conf(
        self, *, result_backend: bool = False, transport_options: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The Celery settings that name this Redis: the broker (its ``transport_options``
        merged with the URL's options) and, when asked, the result backend."""
        kombu = {CLIENT_OPTIONS[k][1]: v for k, v in self.options.items()}
        conf: dict[str, Any] = {
            "broker_url": self.url,
            "broker_transport_options": {**(transport_options or {}), **kombu},
        }
        if self.tls:
            conf["broker_use_ssl"] = self.celery_ssl()
        if result_backend:
            conf["result_backend"] = self.url
            conf.update({CLIENT_OPTIONS[k][2]: v for k, v in self.options.items()})
            if self.tls:
                conf["redis_backend_use_ssl"] = self.celery_ssl()
        return conf


def celery_conf_for(
    url: str, *, result_backend: bool = False, transport_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Celery's settings for ``url``: a plain or TLS Redis, or Redis behind Sentinel."""
    from bus.sentinel_url import SentinelUrl, is_sentinel

    target: RedisUrl | SentinelUrl = (
        SentinelUrl.parse(url) if is_sentinel(url) else RedisUrl.parse(url)
    )
    return target.celery_conf(result_backend=result_backend, transport_options=transport_options)


def read_option(name: str, value: str) -> Any:
    """One of :data:`CLIENT_OPTIONS` from its URL text (``ConfigError`` when invalid)."""
    return _read(name, value)


def _read(name: str, value: str) -> Any:
    read = CLIENT_OPTIONS[name][0]
    try:
        return read(value)
    except ValueError:
        raise ConfigError(f"RAGRELAY_REDIS_URL: {name}={value!r} is not a valid value") from None

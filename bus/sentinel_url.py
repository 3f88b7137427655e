"""``RAGRELAY_REDIS_URL=redis+sentinel://...``: Redis behind Sentinel, for every client.

    redis+sentinel://[[user]:password@]host:port[,host:port...]/master_name[/db][?options]

``host:port`` are the Sentinels (26379 when no port is given), ``master_name`` the name they
monitor, ``password`` the data nodes' (the primary's and replicas'). Options: those of a
plain URL (``socket_timeout``, ``socket_connect_timeout``, ... see :mod:`bus.redis_url`)
for the connections to the primary, and ``sentinel_password`` (``sentinel_username``) when
the Sentinels themselves require AUTH. TLS is not supported over Sentinel here.

Each client asks the Sentinels for the current primary and asks again after a connection
error, so a failover needs no restart:

- redis-py (job state, events, API keys; the gateway's asyncio client):
  ``Sentinel(...).master_for(master_name)`` (:meth:`SentinelUrl.client`);
- Celery's broker: kombu's ``sentinel://`` transport, one URL per Sentinel joined by ``;``
  and ``master_name`` / ``sentinel_kwargs`` in ``broker_transport_options``;
- a Celery result backend (foreign clients, the benchmark's raw chain): Celery's
  ``sentinel://`` backend with the same in ``result_backend_transport_options``.

Pure parsing; the clients are built on demand. docs/deployment.md, "Redis with Sentinel".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from bus.errors import ConfigError
from bus.redaction import display_url
from bus.redis_url import CLIENT_OPTIONS, read_option

SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379
USAGE = "use redis+sentinel://[:password@]host:26379[,host:26379...]/master_name[/db]"
SENTINEL_OPTIONS = ("sentinel_password", "sentinel_username")


def is_sentinel(url: str | None) -> bool:
    return bool(url) and url.strip().lower().startswith(f"{SCHEME}://")  # type: ignore[union-attr]


@dataclass(frozen=True)
class SentinelUrl:
    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_auth: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    raw: str = ""

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        shown = display_url(url)

        def bad(why: str) -> ConfigError:
            return ConfigError(f"RAGRELAY_REDIS_URL={shown}: {why}; {USAGE}")

        scheme, sep, rest = url.strip().partition("://")
        if not sep or scheme.lower() != SCHEME:
            raise bad("not a Sentinel URL")
        rest, _, query = rest.partition("?")
        netloc, _, path = rest.partition("/")
        auth, at, hosts = netloc.rpartition("@")
        username = password = None
        if at:
            user, colon, secret = auth.partition(":")
            username = unquote(user) or None
            password = unquote(secret) if colon else None
        sentinels = []
        for item in filter(None, (h.strip() for h in hosts.split(","))):
            host, colon, port = item.rpartition(":") if ":" in item else (item, "", "")
            if not host or (colon and not port.isdigit()):
                raise bad(f"{item!r} is not host:port")
            sentinels.append((host, int(port) if colon else DEFAULT_PORT))
        if not sentinels:
            raise bad("no Sentinel host")
        segments = [unquote(s) for s in path.split("/") if s]
        if not segments or len(segments) > 2:
            raise bad("expected the master name after the hosts (and optionally a db)")
        if len(segments) == 2 and not segments[1].isdigit():
            raise bad(f"db {segments[1]!r} is not a number")
        options: dict[str, Any] = {}
        sentinel_auth: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            if name in CLIENT_OPTIONS:
                options[name] = read_option(name, value)
            elif name in SENTINEL_OPTIONS:
                sentinel_auth[name.removeprefix("sentinel_")] = value
            else:
                raise bad(
                    f"unsupported option {name}; the options are "
                    f"{', '.join((*CLIENT_OPTIONS, *SENTINEL_OPTIONS))}"
                )
        return cls(
            sentinels=tuple(sentinels),
            master_name=segments[0],
            db=int(segments[1]) if len(segments) == 2 else 0,
            username=username,
            password=password,
            sentinel_auth=sentinel_auth,
            options=options,
            raw=url,
        )

    @property
    def display(self) -> str:
        return display_url(self.raw)

    def _sentinel_kwargs(self) -> dict[str, Any]:
        timeouts = {
            k: v
            for k, v in self.options.items()
            if k in ("socket_timeout", "socket_connect_timeout")
        }
        return {**timeouts, **self.sentinel_auth}

    def master_kwargs(self, **defaults: Any) -> dict[str, Any]:
        """Keyword arguments of the connections to the primary (``defaults`` overridden by
        the URL's options)."""
        out: dict[str, Any] = {**defaults, **self.options, "db": self.db}
        if self.password is not None:
            out["password"] = self.password
        if self.username is not None:
            out["username"] = self.username
        return out

    def client(self, **defaults: Any) -> redis.Redis:
        """A redis-py client of the current primary; it follows a failover by itself."""
        sentinel = Sentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs())
        client: redis.Redis = sentinel.master_for(
            self.master_name, **self.master_kwargs(**defaults)
        )
        return client

    def async_client(self, **defaults: Any) -> aioredis.Redis:
        defaults.pop("max_connections", None)  # Sentinel pools are not blocking pools
        defaults.pop("timeout", None)
        sentinel = AsyncSentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_kwargs())
        client: aioredis.Redis = sentinel.master_for(
            self.master_name, **self.master_kwargs(**defaults)
        )
        return client

    def celery_urls(self) -> str:
        """kombu's and Celery's form: one ``sentinel://`` URL per Sentinel, ``;``-joined."""
        auth = ""
        if self.password is not None or self.username is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"
        return ";".join(f"sentinel://{auth}{h}:{p}/{self.db}" for h, p in self.sentinels)

    def celery_conf(
        self, *, result_backend: bool = False, transport_options: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        kombu = {CLIENT_OPTIONS[k][1]: v for k, v in self.options.items()}
        sentinel_options: dict[str, Any] = {"master_name": self.master_name}
        if self.sentinel_auth:
            sentinel_options["sentinel_kwargs"] = dict(self.sentinel_auth)
        conf: dict[str, Any] = {
            "broker_url": self.celery_urls(),
            "broker_transport_options": {**(transport_options or {}), **kombu, **sentinel_options},
        }
        if result_backend:
            conf["result_backend"] = self.celery_urls()
            conf["result_backend_transport_options"] = dict(sentinel_options)
            conf.update({CLIENT_OPTIONS[k][2]: v for k, v in self.options.items()})
        return conf

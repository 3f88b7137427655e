"""The settings a command runs with: the `ragrelay` group's, or read here when a command
is invoked on its own (tests, scripts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from bus.errors import ConfigError
from bus.logging import configure_logging
from bus.settings import Settings, load_settings

if TYPE_CHECKING:
    import redis

    from workers.settings import WorkerSettings


def settings_of(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    settings = load_settings()
    configure_logging(
        settings.log_level,
        json=settings.log_json,
        redact=settings.redact_pii,
        sdk_debug=settings.log_sdk_debug,
    )
    ctx.find_root().obj = settings
    return settings


def workers_of(ctx: click.Context) -> WorkerSettings:
    """The workers' adapter settings (``workers/settings.py``), read from the environment
    once per command and checked there (e.g. RAGRELAY_STORE against the Weaviate URL)."""
    root = ctx.find_root()
    found = root.meta.get("ragrelay.workers")
    if found is None:
        from workers.settings import load_worker_settings

        found = root.meta["ragrelay.workers"] = load_worker_settings()
    return found


def require_redis(settings: Settings, message: str) -> redis.Redis:
    """A client of the configured Redis, pinged; without ``RAGRELAY_REDIS_URL`` a
    ``ConfigError`` with ``message`` (what the command needs Redis for, and what to set)."""
    if settings.embedded:
        raise ConfigError(message)
    from bus.redis import connect, ping

    client = connect(settings)
    ping(client, settings.redis_url)
    return client

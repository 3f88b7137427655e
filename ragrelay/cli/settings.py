"""The settings a command runs with: the `ragrelay` group's, or read here when a command
is invoked on its own (tests, scripts)."""

from __future__ import annotations

import click

from bus.logging import configure_logging
from bus.settings import Settings, load_settings


def settings_of(ctx: click.Context) -> Settings:
    obj = ctx.find_root().obj
    if isinstance(obj, Settings):
        return obj
    settings = load_settings()
    configure_logging(settings.log_level, json=settings.log_json, redact=settings.redact_pii)
    ctx.find_root().obj = settings
    return settings

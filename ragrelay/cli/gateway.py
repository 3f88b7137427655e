"""CLI of the HTTP gateway: ``ragrelay serve``, ``ragrelay keys create|list|revoke``.
Each needs Redis (RAGRELAY_REDIS_URL). Feedback export is ``ragrelay/cli/observe.py``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ragrelay.cli.settings import require_redis
from ragrelay.cli.settings import settings_of as _settings
from ragrelay.gateway.keys_store import ApiKeyStore

NEEDS_REDIS = (
    "{what} needs Redis: set RAGRELAY_REDIS_URL (e.g. redis://127.0.0.1:6379/0). API keys, "
    "jobs and feedback live there, shared by the gateway and the workers."
)


@contextmanager
def _key_store(ctx: click.Context, what: str) -> Iterator[ApiKeyStore]:
    settings = _settings(ctx)
    client = require_redis(settings, NEEDS_REDIS.format(what=what))
    try:
        yield ApiKeyStore(client, prefix=settings.key_prefix)
    finally:
        client.close()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    metavar="IPS",
    help="Proxies (comma-separated addresses or networks, or '*') whose "
    "X-Forwarded-For and X-Forwarded-Proto are trusted: uvicorn's proxy "
    "headers. The client address (the failed-authentication limit's) is then "
    "the forwarded one. Default: no proxy trusted, the TCP peer counts.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, forwarded_allow_ips: str | None) -> None:
    """Run the HTTP gateway (FastAPI on uvicorn). Needs RAGRELAY_REDIS_URL.

    Limits come from RAGRELAY_GATEWAY_* (RATE_PER_S, BURST, MAX_BODY_BYTES, SSE_MAX_PER_KEY,
    AUTH_FAILURE_BURST, ...; docs/gateway.md).
    """
    import uvicorn

    from ragrelay.gateway import GatewayConfig, create_app

    settings = _settings(ctx)
    require_redis(settings, NEEDS_REDIS.format(what="ragrelay serve")).close()
    app = create_app(settings, GatewayConfig())
    # log_config=None: uvicorn's records go to the root handler, through the redaction chain
    # (bus/logging.py): a stale `?key=rr_...` link does not write the key to the access log.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        access_log=True,
        timeout_graceful_shutdown=10,
    )  # open SSE streams must not hold a shutdown


@click.group("keys")
def keys() -> None:
    """API keys of the HTTP gateway (one tenant each; stored only as hashes)."""


@keys.command("create")
@click.option("--tenant", required=True, help="The tenant the key acts for.")
@click.option("--name", default="", help="A label to recognise the key by in `keys list`.")
@click.pass_context
def keys_create(ctx: click.Context, tenant: str, name: str) -> None:
    """Create a key for TENANT and print it once (the last line of the output)."""
    with _key_store(ctx, "ragrelay keys create") as store:
        record, plain = store.create(tenant, name)
    click.echo(
        f"created key {record.key_id} for tenant {record.tenant}"
        + (f" ({record.name})" if record.name else "")
    )
    click.echo("store it now: it is shown only once and kept only as a hash")
    click.echo(plain)


@keys.command("list")
@click.option("--tenant", default=None, help="Only this tenant's keys.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def keys_list(ctx: click.Context, tenant: str | None, as_json: bool) -> None:
    """List live keys: id, tenant, name, creation time (never the key itself)."""
    with _key_store(ctx, "ragrelay keys list") as store:
        records = store.list(tenant)
    for r in records:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "key_id": r.key_id,
                        "tenant": r.tenant,
                        "name": r.name,
                        "created_at": r.created_at,
                    }
                )
            )
        else:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.created_at))
            click.echo(f"{r.key_id}  {r.tenant}  {created}  {r.name}".rstrip())


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke the key KEY_ID (as shown by `keys list`); it stops working at once."""
    with _key_store(ctx, "ragrelay keys revoke") as store:
        record = store.revoke(key_id)
    if record is None:
        raise click.ClickException(f"no key {key_id}")
    click.echo(f"revoked key {record.key_id} of tenant {record.tenant}")

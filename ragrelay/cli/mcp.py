"""`ragrelay mcp`: ragrelay as a Model Context Protocol server on stdin/stdout."""

from __future__ import annotations

import re

import click

from ragrelay.cli.settings import settings_of, workers_of

TENANT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@click.command("mcp")
@click.option(
    "--tenant",
    default="default",
    show_default=True,
    help="The tenant every call of this server runs as (its documents, its jobs).",
)
@click.pass_context
def mcp_command(ctx: click.Context, tenant: str) -> None:
    """Serve ragrelay to an MCP client (Claude Desktop or Code, an IDE, an agent) over stdio.

    Tools: ask, submit_job, get_job, search_documents; resource: ragrelay://jobs/{id}/trace.
    Jobs run like `ragrelay ask`: in this process without RAGRELAY_REDIS_URL, on the workers of
    `ragrelay up` with it. Each call's budget is capped by RAGRELAY_MCP_MAX_* (docs/mcp.md).
    Logs go to stderr; stdout carries the protocol. For HTTP, `ragrelay serve` mounts /mcp.
    """
    if not TENANT.match(tenant):
        raise click.BadParameter("letters, digits, '_', '.', '-' (1-64)", param_hint="--tenant")
    import anyio

    from ragrelay.mcp.local import ClientBackend
    from ragrelay.mcp.server import build_server
    from ragrelay.mcp.settings import load_mcp_server_settings

    settings = settings_of(ctx)
    caps = load_mcp_server_settings()
    backend = ClientBackend(settings, workers_of(ctx))

    async def fixed_tenant(_: object) -> str:
        return tenant

    server = build_server(backend, caps, fixed_tenant)
    try:
        anyio.run(server.run_stdio_async)
    finally:
        backend.close()

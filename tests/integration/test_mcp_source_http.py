"""An MCP source over streamable HTTP: the SDK's MCPServer on a real uvicorn, asked by the
retrieval worker's client (``workers/mcp_sources``) with the configured headers, time-boxed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from tests.interop.support import serve_in_thread
from tests.support.redis_server import free_port
from workers.mcp_sources import McpServers, McpSourcesFile

pytestmark = pytest.mark.integration


def wiki_server() -> Any:
    server = MCPServer("wiki")

    @server.tool()
    async def search(query: str, ctx: Context) -> str:
        """Pages of the internal wiki matching the query."""
        headers = ctx.headers or {}
        if headers.get("authorization") != "Bearer wiki-token":
            raise ToolError("unauthorised")
        return f"Runbook page for {query!r}: restart the ingest queue with `ragrelay up`."

    @server.resource("wiki://runbooks/ingest", mime_type="text/markdown")
    def ingest_runbook() -> str:
        """The ingest runbook."""
        return "# Ingest runbook\n\nA stuck ingest queue is drained by `ragrelay dlq replay`."

    return server.streamable_http_app(
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_thread(wiki_server()) as base:
        yield f"{base}/mcp"


def servers(**source: Any) -> McpServers:
    base = {"name": "wiki", "tool": "search", "query_argument": "query", "timeout_s": 10}
    return McpServers(McpSourcesFile.model_validate({"tenants": {"acme": [{**base, **source}]}}))


def test_a_url_source_is_called_with_its_headers_and_cited(url: str) -> None:
    good = servers(url=url, headers={"Authorization": "Bearer wiki-token"})
    hits, degraded = good.search("acme", "how to restart ingest", k=5)
    assert degraded == []
    assert hits[0].chunk.doc_id == "mcp:wiki/search"
    assert "restart the ingest queue" in hits[0].chunk.text


def test_a_refusing_or_unreachable_url_degrades_with_the_reason(url: str) -> None:
    refused = servers(url=url, headers={"Authorization": "Bearer wrong"})
    hits, degraded = refused.search("acme", "how to restart ingest", k=5)
    assert hits == [] and "unauthorised" in degraded[0]
    closed = servers(url=f"http://127.0.0.1:{free_port()}/mcp", timeout_s=5)
    hits, degraded = closed.search("acme", "q", k=5)
    assert hits == [] and degraded[0].startswith("mcp:wiki: ")


def test_a_resource_source_is_read_and_cited_with_its_uri(url: str) -> None:
    reader = servers(url=url, tool=None, query_argument=None, resource="wiki://runbooks/ingest")
    hits, degraded = reader.search("acme", "stuck ingest queue", k=5)
    assert degraded == []
    chunk = hits[0].chunk
    assert chunk.doc_id == "mcp:wiki/wiki://runbooks/ingest"
    assert chunk.metadata["mcp_resource"] == "wiki://runbooks/ingest"
    assert "ragrelay dlq replay" in chunk.text

"""Smoke test with ``@modelcontextprotocol/server-everything`` (npm 2026.8.31, stdio): the
SDK's client lists its tools and calls ``echo``; as a tenant's retrieval source (``echo``
with the question as its ``message``) a whole job reaches it and cites ``mcp:everything/echo``."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.interop.test_mcp_sources import NODE_DIR, ask, mcp_failures, npm_installed
from tests.support.cluster import sample_corpus_env

pytestmark = pytest.mark.integration

EVERYTHING = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything"


def server_args() -> list[str]:
    if not (EVERYTHING / "package.json").exists():
        pytest.fail("server-everything missing: run `npm ci` in tests/interop/mcp/node")
    return [str(EVERYTHING / "dist" / "index.js"), "stdio"]


def test_lists_tools_and_echoes() -> None:
    params = StdioServerParameters(command=npm_installed(), args=server_args())

    async def main() -> Any:
        with anyio.fail_after(60):
            async with Client(params, read_timeout_seconds=30) as client:
                tools = {t.name for t in (await client.list_tools()).tools}
                echoed = await client.call_tool("echo", {"message": "ragrelay says hi"})
                return tools, echoed

    tools, echoed = anyio.run(main)
    assert "echo" in tools
    assert not echoed.is_error
    assert "ragrelay says hi" in echoed.content[0].text


def test_echo_as_a_retrieval_source_is_reached_and_cited(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("mcp-everything")
    source = {
        "name": "everything",
        "command": npm_installed(),
        "args": server_args(),
        "tool": "echo",
        "query_argument": "message",
        "timeout_s": 30,
    }
    (root / "sources.json").write_text(json.dumps({"tenants": {"echoes": [source]}}))
    env = sample_corpus_env(root / "data", "acme", RAGRELAY_MCP_SOURCES=str(root / "sources.json"))
    result = ask(env, "What does the quokka relay echo back?", "echoes")
    assert result["status"] == "succeeded", result
    cited = [c for c in result["citations"] if c["source"] == "mcp"]
    assert cited and cited[0]["doc_id"] == "mcp:everything/echo", result["citations"]
    assert not mcp_failures(result)

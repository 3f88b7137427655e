"""The MCP Inspector's CLI mode (npm ``@modelcontextprotocol/inspector``, a client nobody here
wrote) lists and calls ragrelay's tools over stdio (`ragrelay mcp`) and over HTTP (`/mcp` on
a real uvicorn gateway, with and without a valid key)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from tests.interop.support import serve_in_thread
from tests.interop.test_mcp_sources import NODE_DIR, npm_installed
from tests.support.cluster import sample_corpus_env
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

INSPECTOR = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector"
TOOLS = {"ask", "submit_job", "get_job", "search_documents", "add_document", "delete_document"}


@pytest.fixture(scope="module")
def node() -> str:
    return npm_installed()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("inspector")
    env = sample_corpus_env(root / "data", "acme")
    env["HOME"] = str(root / "home")  # the Inspector's own catalog stays in the test's dir
    return env


def inspector(node: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    launcher = json.loads((INSPECTOR / "package.json").read_text())["bin"]["mcp-inspector"]
    return subprocess.run(
        [node, str(INSPECTOR / launcher), "--cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def stdio(env: dict[str, str]) -> list[str]:
    return [
        "-e",
        f"RAGRELAY_DATA_DIR={env['RAGRELAY_DATA_DIR']}",
        "-e",
        f"PYTHONPATH={env['PYTHONPATH']}",
        sys.executable,
        "-m",
        "ragrelay",
        "mcp",
        "--tenant",
        "acme",
    ]


def parsed(out: subprocess.CompletedProcess[str]) -> Any:
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return json.loads(out.stdout)


def test_the_inspector_lists_the_tools_over_stdio_with_portable_schemas(
    node: str, env: dict[str, str]
) -> None:
    listed = parsed(inspector(node, env, *stdio(env), "--method", "tools/list", "--strict"))
    assert {t["name"] for t in listed["tools"]} == TOOLS
    ask = next(t for t in listed["tools"] if t["name"] == "ask")
    assert ask["inputSchema"]["required"] == ["query"]
    assert "answer" in ask["outputSchema"]["properties"]


def test_the_inspector_calls_ask_over_stdio(node: str, env: dict[str, str]) -> None:
    called = parsed(
        inspector(
            node,
            env,
            *stdio(env),
            "--method",
            "tools/call",
            "--tool-name",
            "ask",
            "--tool-arg",
            "query=How are transient errors retried?",
        )
    )
    assert not called.get("isError")
    answer = called["structuredContent"]
    assert answer["status"] == "succeeded"
    assert answer["citations"][0]["doc_id"] == "retries"


@pytest.fixture(scope="module")
def gateway(redis_server: RedisServer, env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    client = redis_server.client()
    client.flushall()
    client.close()
    settings = Settings(redis_url=redis_server.url, data_dir=Path(env["RAGRELAY_DATA_DIR"]))
    store = ApiKeyStore(redis.Redis.from_url(redis_server.url))
    keys = {t: store.create(t)[1] for t in ("acme", "globex")}
    with serve_in_thread(create_app(settings, GatewayConfig())) as url:
        yield f"{url}/mcp", keys


def test_the_inspector_searches_over_http_as_its_keys_tenant(
    node: str, env: dict[str, str], gateway: tuple[str, dict[str, str]]
) -> None:
    url, keys = gateway

    def search(key: str) -> subprocess.CompletedProcess[str]:
        return inspector(
            node,
            env,
            url,
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {key}",
            "--stored-auth-only",  # a refused key is an error here, not an OAuth sign-in
            "--method",
            "tools/call",
            "--tool-name",
            "search_documents",
            "--tool-arg",
            "query=retry backoff",
            "k=3",
        )

    acme = parsed(search(keys["acme"]))["structuredContent"]["hits"]
    globex = parsed(search(keys["globex"]))["structuredContent"]["hits"]
    assert acme and acme[0]["doc_id"] == "retries"
    assert globex == []
    refused = search("rr_not-a-key")
    assert refused.returncode != 0
    error = json.loads(refused.stderr.strip().splitlines()[-1])["error"]
    assert error["code"] == "auth_required"
    assert "invalid or revoked API key" in error["message"]

"""``/mcp`` on the gateway (real uvicorn) in front of a real cluster (orchestrator + 4 worker
processes on a private Redis), driven by the MCP SDK's own streamable-HTTP client: the
Bearer keys of /v1, and one tenant's calls never see another's jobs or documents."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
import redis
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.keys_store import ApiKeyStore
from tests.interop.support import serve_in_thread, start_pipeline
from tests.interop.test_mcp_sources import QUESTION, git_source, make_repo
from tests.support.cluster import Cluster, sample_corpus_env
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@pytest.fixture(scope="module")
def env(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    client = redis_server.client()
    client.flushall()
    client.close()
    data = tmp_path_factory.mktemp("mcp-http-data")
    env = sample_corpus_env(data, "acme")
    # acme's git repository is also a source: the worker processes ask mcp-server-git
    sources = {"tenants": {"acme": [git_source(make_repo(data / "repo"))]}}
    (data / "sources.json").write_text(json.dumps(sources))
    env.update(
        RAGRELAY_REDIS_URL=redis_server.url,
        RAGRELAY_HEARTBEAT_DIR=str(data / "hb"),
        RAGRELAY_MCP_SOURCES=str(data / "sources.json"),
    )
    return env


@pytest.fixture(scope="module")
def cluster(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = start_pipeline(env, tmp_path_factory.mktemp("mcp-http-logs"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def base_url(cluster: Cluster, env: dict[str, str]) -> Iterator[str]:
    settings = Settings(
        redis_url=env["RAGRELAY_REDIS_URL"],
        data_dir=Path(env["RAGRELAY_DATA_DIR"]),
        heartbeat_dir=Path(env["RAGRELAY_HEARTBEAT_DIR"]),
    )
    with serve_in_thread(create_app(settings, GatewayConfig())) as url:
        yield url


@pytest.fixture(scope="module")
def keys(env: dict[str, str], base_url: str) -> dict[str, str]:
    store = ApiKeyStore(redis.Redis.from_url(env["RAGRELAY_REDIS_URL"]))
    return {t: store.create(t)[1] for t in ("acme", "globex")}


def run(base_url: str, key: str, body: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        with anyio.fail_after(90):
            async with (
                httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60) as http,
                Client(
                    streamable_http_client(f"{base_url}/mcp", http_client=http),
                    read_timeout_seconds=60,
                ) as client,
            ):
                return await body(client)

    return anyio.run(main)


def test_absent_or_foreign_key_is_refused_before_mcp(base_url: str, keys: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        absent = http.post("/mcp", json=INIT, headers=MCP_HEADERS)
        foreign = http.post(
            "/mcp", json=INIT, headers={**MCP_HEADERS, "Authorization": "Bearer rr_not-a-key"}
        )
        ok = http.post(
            "/mcp", json=INIT, headers={**MCP_HEADERS, "Authorization": f"Bearer {keys['acme']}"}
        )
    assert absent.status_code == 401 and "Bearer" in absent.json()["detail"]
    assert absent.headers["www-authenticate"].startswith("Bearer")
    assert foreign.status_code == 401
    assert foreign.json()["detail"] == "invalid or revoked API key"
    assert ok.status_code == 200, ok.text
    assert "/mcp" not in http_openapi(base_url)


def http_openapi(base_url: str) -> str:
    return httpx.get(f"{base_url}/openapi.json", timeout=10).text


def test_ask_over_http_with_progress_and_trace(base_url: str, keys: dict[str, str]) -> None:
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async def body(client: Client) -> Any:
        tools = {t.name for t in (await client.list_tools()).tools}
        answer = await client.call_tool(
            "ask", {"query": "How are transient errors retried?"}, progress_callback=on_progress
        )
        assert not answer.is_error, answer.content
        trace = await client.read_resource(
            f"ragrelay://jobs/{answer.structured_content['job_id']}/trace"
        )
        return tools, answer.structured_content, trace

    tools, answer, trace = run(base_url, keys["acme"], body)
    assert tools == {
        "ask",
        "submit_job",
        "get_job",
        "search_documents",
        "add_document",
        "delete_document",
    }
    assert answer["status"] == "succeeded"
    assert answer["citations"] and answer["citations"][0]["doc_id"] == "retries"
    assert answer["budget_use"]["budget"]["max_cost_usd"] == 0.5
    assert progress[0] == "job.submitted accepted" and progress[-1] == "job.finished succeeded"
    events = json.loads(trace.contents[0].text)
    assert {e["stage"] for e in events} >= {"analysis", "retrieval", "generation", "evaluation"}


def test_a_tenant_never_sees_another_tenants_jobs_or_documents(
    base_url: str, keys: dict[str, str]
) -> None:
    async def acme(client: Client) -> Any:
        submitted = await client.call_tool("submit_job", {"query": "How are retries bounded?"})
        assert not submitted.is_error, submitted.content
        job_id = submitted.structured_content["job_id"]
        for _ in range(200):
            view = await client.call_tool("get_job", {"job_id": job_id})
            if view.structured_content["answer"] is not None:
                break
            await anyio.sleep(0.1)
        hits = await client.call_tool("search_documents", {"query": "retry backoff", "k": 3})
        return job_id, view.structured_content, hits.structured_content

    job_id, view, hits = run(base_url, keys["acme"], acme)
    assert view["status"] == "succeeded"
    assert hits["hits"] and hits["hits"][0]["doc_id"] == "retries"

    async def globex(client: Client) -> Any:
        got = await client.call_tool("get_job", {"job_id": job_id})
        found = await client.call_tool("search_documents", {"query": "retry backoff", "k": 3})
        try:
            await client.read_resource(f"ragrelay://jobs/{job_id}/trace")
            trace_error = None
        except Exception as exc:  # the SDK raises the server's resource error
            trace_error = str(exc)
        return got, found, trace_error

    got, found, trace_error = run(base_url, keys["globex"], globex)
    assert got.is_error and "belongs to another tenant" in got.content[0].text
    assert not found.is_error and found.structured_content["hits"] == []
    assert trace_error is not None and "another tenant" in trace_error


def test_an_agent_asks_over_http_and_the_workers_answer_from_the_tenants_mcp_source(
    base_url: str, keys: dict[str, str]
) -> None:
    """MCP both ways through the cluster: an MCP client asks /mcp, the retrieval worker
    process asks the tenant's mcp-server-git, the answer cites it; another tenant's job
    never reaches that server."""

    async def body(client: Client) -> Any:
        r = await client.call_tool("ask", {"query": QUESTION})
        assert not r.is_error, r.content
        return r.structured_content

    acme = run(base_url, keys["acme"], body)
    assert "1.21 gigawatts" in acme["answer"]
    assert [c["doc_id"] for c in acme["citations"] if c["source"] == "mcp"] == ["mcp:repo/git_log"]
    globex = run(base_url, keys["globex"], body)
    assert not [c for c in globex["citations"] if c["source"] == "mcp"]
    assert "1.21 gigawatts" not in globex["answer"]


def test_the_overhead_benchmark_runs_both_ways_on_the_same_jobs(
    base_url: str, keys: dict[str, str]
) -> None:
    from ragrelay.bench.mcp_overhead import run as bench_mcp

    result = bench_mcp(
        base_url, keys["acme"], jobs=2, warmup=0, question="How are retries bounded?"
    )
    assert result["jobs"] == 2
    assert result["http_p50_ms"] > 0 and result["mcp_p50_ms"] > 0
    assert result["mcp_session_open_p50_ms"] > 0
    assert isinstance(result["mcp_overhead_p50_pct"], float)

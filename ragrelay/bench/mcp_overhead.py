"""The MCP layer's overhead per ``ask``: the same job, one after the other, over the HTTP API
(``POST /v1/jobs`` then its SSE stream to ``event: result``) and over ``/mcp`` (the SDK's
streamable-HTTP client calling ``ask`` in one session, as an agent that keeps its connection
does), alternating in one run so both see the same load. Opening a session (discovery and
the tool listing the SDK does before the first call) is measured apart: an agent pays it
once per connection, not per ask."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import httpx2

from ragrelay.bench.stats import percentile

QUESTION = "How are transient errors retried?"


async def http_ask(http: httpx.AsyncClient, question: str) -> float:
    started = time.perf_counter()
    accepted = await http.post("/v1/jobs", json={"query": question})
    accepted.raise_for_status()
    job_id = accepted.json()["job_id"]
    async with http.stream("GET", f"/v1/jobs/{job_id}/events") as events:
        async for line in events.aiter_lines():
            if line == "event: result":
                return time.perf_counter() - started
    raise RuntimeError(f"the events of job {job_id} ended without a result")


@asynccontextmanager
async def mcp_session(base_url: str, key: str) -> AsyncIterator[Any]:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http,
        Client(streamable_http_client(f"{base_url}/mcp", http_client=http), cache=None) as client,
    ):
        await client.list_tools()
        yield client


async def mcp_ask(client: Any, question: str) -> float:
    started = time.perf_counter()
    result = await client.call_tool("ask", {"query": question})
    if result.is_error:
        raise RuntimeError(f"ask failed: {result.content}")
    return time.perf_counter() - started


async def session_open(base_url: str, key: str) -> float:
    started = time.perf_counter()
    async with mcp_session(base_url, key):
        return time.perf_counter() - started


async def measure(base_url: str, key: str, jobs: int, warmup: int, question: str) -> dict[str, Any]:
    http_s: list[float] = []
    mcp_s: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as http,
        mcp_session(base_url, key) as client,
    ):
        for i in range(warmup + jobs):
            a = await http_ask(http, question)
            b = await mcp_ask(client, question)
            if i >= warmup:
                http_s.append(a)
                mcp_s.append(b)
    opens = [await session_open(base_url, key) for _ in range(5)]
    http_p50, mcp_p50 = percentile(http_s, 50), percentile(mcp_s, 50)
    return {
        "jobs": jobs,
        "http_p50_ms": round(http_p50 * 1000, 1),
        "http_p90_ms": round(percentile(http_s, 90) * 1000, 1),
        "mcp_p50_ms": round(mcp_p50 * 1000, 1),
        "mcp_p90_ms": round(percentile(mcp_s, 90) * 1000, 1),
        "mcp_overhead_p50_pct": round((mcp_p50 / http_p50 - 1) * 100, 1) if http_p50 else None,
        "mcp_session_open_p50_ms": round(percentile(opens, 50) * 1000, 1),
    }


def run(base_url: str, key: str, *, jobs: int, warmup: int, question: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        return await measure(base_url.rstrip("/"), key, jobs, warmup, question)

    return anyio.run(main)

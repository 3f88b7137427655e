"""`ragrelay mcp` over stdio, driven by the MCP SDK's own client, on a real embedded ragrelay
(the same client as `ragrelay ask`, offline provider, the sample corpus)."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.support.cluster import sample_corpus_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return sample_corpus_env(tmp_path_factory.mktemp("mcp-stdio"), "acme")


def run(env: dict[str, str], tenant: str, body: Callable[[Client], Awaitable[Any]]) -> Any:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "ragrelay", "mcp", "--tenant", tenant], env=env
    )

    async def main() -> Any:
        with anyio.fail_after(90):
            async with Client(params, read_timeout_seconds=60) as client:
                return await body(client)

    return anyio.run(main)


def test_tools_have_schemas_from_the_models(env: dict[str, str]) -> None:
    async def body(client: Client) -> Any:
        return (await client.list_tools()).tools, (
            await client.list_resource_templates()
        ).resource_templates

    tools, templates = run(env, "acme", body)
    by_name = {t.name: t for t in tools}
    assert set(by_name) == {
        "ask",
        "submit_job",
        "get_job",
        "search_documents",
        "add_document",
        "delete_document",
    }
    ask = by_name["ask"]
    assert ask.input_schema["required"] == ["query"]
    budget = json.dumps(ask.input_schema)
    assert "max_cost_usd" in budget and "deadline_s" in budget
    assert ask.output_schema is not None
    assert {"answer", "citations", "stop_reason", "budget_use"} <= set(
        ask.output_schema["properties"]
    )
    assert by_name["search_documents"].annotations is not None
    assert by_name["search_documents"].annotations.read_only_hint is True
    assert [t.uri_template for t in templates] == ["ragrelay://jobs/{job_id}/trace"]


def test_ask_answers_with_citations_and_notifies_progress_per_step(env: dict[str, str]) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async def body(client: Client) -> Any:
        answer = await client.call_tool(
            "ask",
            {"query": "How are transient errors retried?", "budget": {"max_iterations": 2}},
            progress_callback=on_progress,
        )
        assert not answer.is_error, answer.content
        job_id = answer.structured_content["job_id"]
        trace = await client.read_resource(f"ragrelay://jobs/{job_id}/trace")
        return answer.structured_content, trace

    answer, trace = run(env, "acme", body)
    assert answer["status"] == "succeeded"
    assert "backoff" in answer["answer"]
    assert answer["citations"][0]["doc_id"] == "retries"
    assert answer["stop_reason"]
    assert answer["budget_use"]["budget"]["max_iterations"] == 2  # asked for, under the cap
    assert answer["budget_use"]["budget"]["max_cost_usd"] == 0.5  # left out: the cap
    messages = [m for _, m in progress]
    assert messages[0] == "job.submitted accepted"
    assert messages[-1] == "job.finished succeeded"
    assert [v for v, _ in progress] == sorted(v for v, _ in progress)
    events = json.loads(trace.contents[0].text)
    assert events[0]["type"] == "job.submitted" and events[-1]["type"] == "job.finished"


def test_submit_then_get_job_and_search_documents(env: dict[str, str]) -> None:
    async def body(client: Client) -> Any:
        submitted = await client.call_tool(
            "submit_job", {"query": "What happens when the budget is spent?"}
        )
        assert not submitted.is_error, submitted.content
        job_id = submitted.structured_content["job_id"]
        for _ in range(100):
            view = await client.call_tool("get_job", {"job_id": job_id})
            assert not view.is_error, view.content
            if view.structured_content["answer"] is not None:
                break
        hits = await client.call_tool("search_documents", {"query": "retry backoff", "k": 3})
        return submitted.structured_content, view.structured_content, hits

    submitted, view, hits = run(env, "acme", body)
    assert submitted["created"] is True and submitted["status"] == "running"
    assert view["status"] == "succeeded" and view["answer"]["citations"]
    assert not hits.is_error
    found = hits.structured_content["hits"]
    assert 1 <= len(found) <= 3
    assert found[0]["doc_id"] == "retries"
    assert found[0]["citation"]["chunk_id"] == found[0]["chunk_id"]


def test_errors_are_tool_errors_with_reasons(env: dict[str, str]) -> None:
    async def body(client: Client) -> Any:
        return (
            await client.call_tool("ask", {"query": "x", "budget": {"max_cost_usd": 5.0}}),
            await client.call_tool("get_job", {"job_id": "nope"}),
            await client.call_tool("search_documents", {"query": "x", "k": 150}),
            await client.call_tool("ask", {"query": "   "}),
        )

    over_budget, unknown, too_many, blank = run(env, "acme", body)
    for result in (over_budget, unknown, too_many, blank):
        assert result.is_error
    assert "RAGRELAY_MCP_MAX_COST_USD" in over_budget.content[0].text
    assert "no job nope" in unknown.content[0].text
    assert "RAGRELAY_MCP_MAX_SEARCH_K" in too_many.content[0].text
    assert "blank" in blank.content[0].text


def test_another_tenant_sees_neither_the_job_nor_the_documents(
    env: dict[str, str], tmp_path: Path
) -> None:
    async def acme(client: Client) -> str:
        r = await client.call_tool("ask", {"query": "How are transient errors retried?"})
        assert not r.is_error, r.content
        job_id: str = r.structured_content["job_id"]
        return job_id

    job_id = run(env, "acme", acme)

    async def globex(client: Client) -> Any:
        return (
            await client.call_tool("get_job", {"job_id": job_id}),
            await client.call_tool("search_documents", {"query": "retry backoff"}),
        )

    view, hits = run(env, "globex", globex)
    assert view.is_error and "another tenant" in view.content[0].text
    assert not hits.is_error and hits.structured_content["hits"] == []

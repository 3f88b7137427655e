"""Analysis routes a question to the tenant's MCP servers when they are configured for it."""

from __future__ import annotations

from typing import Any, cast

from schemas import AnalysisTask, ScoredChunk
from workers import analysis
from workers.ports import Deps, NoMcpSources
from workers.providers.offline import OfflineProvider
from workers.web import DisabledWeb


class OneTenantsServers:
    def routes(self, tenant: str, query: str) -> bool:
        return tenant == "acme" and "commit" in query

    def search(
        self, tenant: str, query: str, k: int, *, deadline_at: float | None = None
    ) -> tuple[list[ScoredChunk], list[str]]:
        raise AssertionError("analysis never asks the servers")


def deps(mcp: Any) -> Deps:
    unused = cast(Any, None)
    return Deps(
        provider=OfflineProvider(web_enabled=False),
        store=unused,
        user_context=unused,
        web=DisabledWeb(),
        mcp=mcp,
    )


def task(tenant: str, query: str) -> AnalysisTask:
    return AnalysisTask(job_id="j", step_id="j/1/analysis/0", tenant=tenant, query=query)


def test_mcp_is_added_only_for_a_tenant_and_question_its_servers_route() -> None:
    servers = deps(OneTenantsServers())
    assert "mcp" in analysis.handle(task("acme", "who wrote the last commit?"), servers).sources
    assert "mcp" not in analysis.handle(task("acme", "what is the refund policy?"), servers).sources
    assert (
        "mcp" not in analysis.handle(task("globex", "who wrote the last commit?"), servers).sources
    )


def test_without_sources_nothing_changes() -> None:
    result = analysis.handle(task("acme", "who wrote the last commit?"), deps(NoMcpSources()))
    assert result.sources == ["internal"]

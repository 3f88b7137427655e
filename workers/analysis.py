"""Analysis: rewrite/decompose the query, route it to sources, triage email."""

from __future__ import annotations

from schemas import AnalysisResult, AnalysisTask
from workers.ports import Deps


def handle(msg: AnalysisTask, deps: Deps) -> AnalysisResult:
    result = deps.provider.analyze(msg)
    if not deps.web.enabled and "web" in result.sources:
        result.sources = [s for s in result.sources if s != "web"]
    if not msg.user_id and "user_context" in result.sources:
        result.sources = [s for s in result.sources if s != "user_context"]
    if (
        result.needs_retrieval
        and "mcp" not in result.sources
        and deps.mcp.routes(msg.tenant, msg.query)
    ):
        result.sources.append("mcp")  # the tenant connected MCP servers for such questions
    return result

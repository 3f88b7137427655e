from __future__ import annotations

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from ragrelay.mcp.models import BudgetRequest
from ragrelay.mcp.server import capped_budget
from ragrelay.mcp.settings import McpServerSettings


def test_a_call_gets_what_it_asks_within_the_cap_and_the_cap_for_the_rest() -> None:
    caps = McpServerSettings(max_cost_usd=0.25, max_deadline_s=60)
    budget = capped_budget(BudgetRequest(max_iterations=1, deadline_s=30), caps)
    assert budget.max_iterations == 1 and budget.deadline_s == 30
    assert budget.max_cost_usd == 0.25 and budget.max_llm_calls == caps.max_llm_calls
    assert capped_budget(None, caps) == caps.cap()


@pytest.mark.parametrize(
    ("asked", "variable"),
    [
        ({"max_cost_usd": 1.0}, "RAGRELAY_MCP_MAX_COST_USD"),
        ({"deadline_s": 600.0}, "RAGRELAY_MCP_MAX_DEADLINE_S"),
        ({"max_iterations": 4}, "RAGRELAY_MCP_MAX_ITERATIONS"),
        ({"max_tokens": 10**6}, "RAGRELAY_MCP_MAX_TOKENS"),
        ({"max_llm_calls": 21}, "RAGRELAY_MCP_MAX_LLM_CALLS"),
    ],
)
def test_asking_for_more_than_the_cap_is_refused_naming_the_cap(
    asked: dict[str, float], variable: str
) -> None:
    with pytest.raises(ToolError, match=variable):
        capped_budget(BudgetRequest.model_validate(asked), McpServerSettings())

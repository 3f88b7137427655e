"""The MCP server's limits (``RAGRELAY_MCP_*``): the largest budget one tool call may ask
for, how long ``ask`` waits, how many chunks ``search_documents`` returns at most."""

from __future__ import annotations

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bus.errors import ConfigError
from schemas import Budget


class McpServerSettings(BaseSettings):
    """Per-call caps. A call asking for more than a cap is refused (a tool error naming the
    cap and its variable); a limit the call leaves out is the cap itself."""

    model_config = SettingsConfigDict(env_prefix="RAGRELAY_MCP_", extra="ignore")

    max_iterations: int = Field(3, ge=1, le=20)
    max_llm_calls: int = Field(20, ge=1, le=1000)
    max_tokens: int = Field(60_000, ge=1, le=100_000_000)
    max_cost_usd: float = Field(0.50, ge=0, le=100_000)
    max_deadline_s: float = Field(120.0, gt=0, le=86_400)
    max_search_k: int = Field(20, ge=1, le=200)

    def cap(self) -> Budget:
        return Budget(
            max_iterations=self.max_iterations,
            max_llm_calls=self.max_llm_calls,
            max_tokens=self.max_tokens,
            max_cost_usd=self.max_cost_usd,
            deadline_s=self.max_deadline_s,
        )


CAP_VARIABLES = {
    "max_iterations": "RAGRELAY_MCP_MAX_ITERATIONS",
    "max_llm_calls": "RAGRELAY_MCP_MAX_LLM_CALLS",
    "max_tokens": "RAGRELAY_MCP_MAX_TOKENS",
    "max_cost_usd": "RAGRELAY_MCP_MAX_COST_USD",
    "deadline_s": "RAGRELAY_MCP_MAX_DEADLINE_S",
}


def load_mcp_server_settings() -> McpServerSettings:
    try:
        return McpServerSettings()
    except ValidationError as exc:
        lines = [
            f"RAGRELAY_MCP_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        ]
        raise ConfigError("invalid MCP server settings:\n  " + "\n  ".join(lines)) from exc

"""MCP servers as retrieval sources, per tenant (``RAGRELAY_MCP_SOURCES``; docs/mcp.md).

``build_mcp_sources(settings)`` is ``Deps.mcp``: ``NoMcpSources`` when no file is set,
``McpServers`` over the checked file otherwise (the ``mcp`` SDK is imported only then).
"""

from __future__ import annotations

from bus.errors import ConfigError
from workers.mcp_sources.client import McpServers
from workers.mcp_sources.config import McpSourceConfig, McpSourcesFile, load_sources
from workers.ports import McpSources, NoMcpSources
from workers.settings import McpSourceSettings


def build_mcp_sources(settings: McpSourceSettings) -> McpSources:
    if settings.sources is None:
        return NoMcpSources()
    config = load_sources(settings.sources)
    try:
        import mcp  # noqa: F401 - fail at worker start, not in the first retrieval
    except ImportError as exc:
        raise ConfigError(
            "RAGRELAY_MCP_SOURCES is set but the MCP SDK is missing: pip install 'ragrelay[mcp]'"
        ) from exc
    return McpServers(config)


__all__ = [
    "McpServers",
    "McpSourceConfig",
    "McpSourcesFile",
    "NoMcpSources",
    "build_mcp_sources",
    "load_sources",
]

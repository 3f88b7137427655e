"""ragrelay over the Model Context Protocol, as a server (tools for agents).

``build_server(backend, settings, tenant_of)`` makes the ``MCPServer``; ``ragrelay mcp``
serves it on stdio (``ragrelay.mcp.local.ClientBackend``), the gateway on ``/mcp``
(``ragrelay.gateway.mcp_http``). MCP servers as retrieval *sources* are the workers'
business: ``workers/mcp/``. docs/mcp.md has the security model.
"""

from ragrelay.mcp.backend import Backend, JobSnapshot
from ragrelay.mcp.server import build_server, capped_budget
from ragrelay.mcp.settings import McpServerSettings, load_mcp_server_settings

__all__ = [
    "Backend",
    "JobSnapshot",
    "McpServerSettings",
    "build_server",
    "capped_budget",
    "load_mcp_server_settings",
]

"""The HTTP gateway: jobs, SSE events, feedback and user context over API keys per tenant."""

from orchestrator.gateway.app import create_app
from orchestrator.gateway.config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]

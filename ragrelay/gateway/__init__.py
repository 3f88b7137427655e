"""The HTTP gateway: jobs, SSE events, feedback and user context over API keys per tenant."""

from ragrelay.gateway.app import create_app
from ragrelay.gateway.config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]

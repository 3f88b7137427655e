"""How messages are carried: Celery app, queues, the task base, settings, logging.

Knows no pipeline logic.
"""

from bus.app import create_app
from bus.errors import (
    ConfigError,
    InvalidMessage,
    PermanentError,
    RagrelayError,
    StepError,
    TransientError,
    UsageError,
)
from bus.settings import Settings, load_settings

__all__ = [
    "ConfigError",
    "InvalidMessage",
    "PermanentError",
    "RagrelayError",
    "Settings",
    "StepError",
    "TransientError",
    "UsageError",
    "create_app",
    "load_settings",
]

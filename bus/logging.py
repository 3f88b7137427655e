"""structlog set-up: JSON lines on stderr with ids bound through contextvars."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from bus.redaction import redact_pii_processor

CONTEXT_KEYS = ("job_id", "step", "tenant", "task_id", "trace_id", "traceparent")


def configure_logging(level: str = "INFO", *, json: bool = True, redact: bool = True) -> None:
    """Configure structlog and the stdlib root logger (Celery logs through it) once."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    if redact:
        processors.append(redact_pii_processor)
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    if not any(getattr(h, "_ragrelay", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler._ragrelay = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


def bind(**values: Any) -> None:
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def clear() -> None:
    structlog.contextvars.clear_contextvars()


def current() -> dict[str, Any]:
    return {k: v for k, v in structlog.contextvars.get_contextvars().items() if k in CONTEXT_KEYS}


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)

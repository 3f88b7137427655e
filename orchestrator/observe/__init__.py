"""Seeing every job: W3C trace ids, the timeline page, feedback export and replay.

Kept light (no FastAPI import) because the engine imports ``orchestrator.observe.otel``;
the router is in ``orchestrator.observe.ui``, the CLI in ``orchestrator.observe.cli``.
"""

from orchestrator.observe.otel import parse_traceparent, traceparent_for
from orchestrator.observe.page import render_timeline
from orchestrator.observe.timeline import build_timeline

__all__ = ["build_timeline", "parse_traceparent", "render_timeline", "traceparent_for"]

"""Seeing every job: W3C trace ids, the timeline page, feedback export and replay."""

from orchestrator.observe.otel import parse_traceparent, traceparent_for
from orchestrator.observe.page import render_timeline
from orchestrator.observe.timeline import build_timeline
from orchestrator.observe.ui import JobPage, build_ui_router, gateway_ui_router

__all__ = [
    "JobPage",
    "build_timeline",
    "build_ui_router",
    "gateway_ui_router",
    "parse_traceparent",
    "render_timeline",
    "traceparent_for",
]

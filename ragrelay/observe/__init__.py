"""Seeing every job: W3C trace ids, the timeline page, feedback export and replay.

Kept light (no FastAPI import) because the engine imports ``bus.tracecontext``;
the router is in ``ragrelay.gateway.ui``, the CLI in ``ragrelay.cli.observe``.
"""

from bus.tracecontext import parse_traceparent, traceparent_for
from ragrelay.observe.page import render_timeline
from ragrelay.observe.timeline import build_timeline

__all__ = ["build_timeline", "parse_traceparent", "render_timeline", "traceparent_for"]

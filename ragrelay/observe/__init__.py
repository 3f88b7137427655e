"""Seeing every job: the timeline page, feedback as eval cases, and replay.

No FastAPI here: the page's route is ``ragrelay.gateway.ui``, the commands are
``ragrelay.cli.observe``. The W3C trace ids live in ``bus.tracecontext`` (the engine puts
them on every task) and are re-exported here.
"""

from bus.tracecontext import parse_traceparent, traceparent_for
from ragrelay.observe.page import render_timeline
from ragrelay.observe.timeline import build_timeline

__all__ = ["build_timeline", "parse_traceparent", "render_timeline", "traceparent_for"]

"""W3C Trace Context ids derived from ragrelay's own ids, so spans link across processes.

A job id is 32 lower-case hex digits already (``uuid4().hex``): it *is* the OpenTelemetry
trace id. Each step gets a span id derived from its step id (``job/iteration/stage/shard``),
so every process that touches a step computes the same ``traceparent`` without talking to
the others. Ids that are not 32 hex (a Celery ingress task id, say) are hashed into shape.
Pure functions; the job's trace stream stays the source of truth.

    traceparent_for("8b2cc6c2ca9c4dc886a4426f882fb262", "8b2c…/1/analysis/0")
    -> "00-8b2cc6c2ca9c4dc886a4426f882fb262-<16 hex>-01"
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

VERSION = "00"
SAMPLED = "01"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def trace_id_for(job_id: str) -> str:
    """The job id when it is 32 hex digits (not all zero), else 32 hex of its SHA-256."""
    lowered = job_id.lower()
    if _HEX32.match(lowered) and lowered != _ZERO_TRACE:
        return lowered
    return _digest(f"ragrelay-trace:{job_id}")[:32]


def span_id_for(step_id: str) -> str:
    """16 hex digits of the SHA-256 of the step id (never all zero)."""
    span = _digest(f"ragrelay-span:{step_id}")[:16]
    return span if span != _ZERO_SPAN else "0" * 15 + "1"  # pragma: no cover - 2**-64


def traceparent_for(job_id: str, step_id: str | None = None) -> str:
    """``00-<trace id>-<span id>-01``; without a step the span is the job's root span."""
    return "-".join((VERSION, trace_id_for(job_id), span_id_for(step_id or job_id), SAMPLED))


@dataclass(frozen=True)
class TraceParent:
    version: str
    trace_id: str
    span_id: str
    flags: str

    @property
    def sampled(self) -> bool:
        return bool(int(self.flags, 16) & 1)


def parse_traceparent(value: str) -> TraceParent | None:
    """A valid ``traceparent`` header split into its fields, else None (as the spec says:
    an invalid header is ignored, never an error)."""
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return TraceParent(version, trace_id, span_id, flags)


__all__ = ["TraceParent", "parse_traceparent", "span_id_for", "trace_id_for", "traceparent_for"]

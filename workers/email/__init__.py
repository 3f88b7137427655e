"""Email analysis helpers for the worker side: triage (rules + a classic classifier) and
the reply body. Pure functions over a flat ``str → str`` email mapping; no mail I/O here."""

from workers.email.reply import compose_reply
from workers.email.triage import (
    LABELS,
    TriageDecision,
    classify,
    classify_detailed,
    default_model_path,
)

__all__ = [
    "LABELS",
    "TriageDecision",
    "classify",
    "classify_detailed",
    "compose_reply",
    "default_model_path",
]

"""Feedback → eval cases (the flywheel). Pure: records in, JSON-ready dicts out.

A case is what ``ragrelay eval qa`` reads (the SQuAD questions format): ``_id``,
``question``, ``answers`` (reference answers), plus where it came from. The reference is
the person's corrected answer when there is one, else the job's own answer when it was
rated 4 or 5 (confirmed good). Low-rated answers without a correction have no reference;
they are exported only on request, with the bad answer under ``rejected_answers``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from bus.errors import UsageError
from ragrelay.feedback import FeedbackRecord

GOOD_RATING = 4
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(value: str, *, now: float) -> float:
    """An epoch time from ``2026-11-01``, ``2026-11-01T12:00:00Z`` (UTC if no zone) or a
    relative ``30m``/``24h``/``7d``/``2w`` before ``now``."""
    text = value.strip()
    rel = _RELATIVE.match(text.lower())
    if rel:
        return now - int(rel.group(1)) * _UNIT_S[rel.group(2)]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"--since {value!r}: expected a date (2026-11-01), a date-time "
            "(2026-11-01T12:00:00Z) or an age (24h, 7d)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def reference_of(record: FeedbackRecord) -> str | None:
    if record.corrected_answer:
        return record.corrected_answer
    if record.rating >= GOOD_RATING and record.answer:
        return record.answer
    return None


def to_case(record: FeedbackRecord) -> dict[str, Any]:
    """One eval case from one feedback record (``answers`` may be empty)."""
    reference = reference_of(record)
    case: dict[str, Any] = {
        "_id": f"feedback-{record.feedback_id}",
        "question": record.query or "",
        "answers": [reference] if reference else [],
        "source": "feedback",
        "reference_kind": (
            "corrected" if record.corrected_answer else "confirmed" if reference else "none"
        ),
        "rating": record.rating,
        "comment": record.comment,
        "job_id": record.job_id,
        "tenant": record.tenant,
        "job_answer": record.answer,
        "job_status": record.status,
        "cited_doc_ids": list(record.cited_doc_ids),
        "at": datetime.fromtimestamp(record.at, UTC).isoformat(),
    }
    if not reference and record.answer:
        case["rejected_answers"] = [record.answer]
    return case


def export_cases(
    records: Iterable[FeedbackRecord],
    *,
    since: float | None = None,
    include_unreferenced: bool = False,
    skipped: list[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Cases for the records at or after ``since``, oldest first, one per job and question:
    a later record on the same job replaces an earlier one (the person's last word).
    Records without a query cannot become cases; their ids go to ``skipped``."""
    latest: dict[str, FeedbackRecord] = {}
    for r in sorted(records, key=lambda r: (r.at, r.feedback_id)):
        if since is not None and r.at < since:
            continue
        if not r.query:
            if skipped is not None:
                skipped.append(r.feedback_id)
            continue
        latest[r.job_id] = r
    for record in sorted(latest.values(), key=lambda r: (r.at, r.feedback_id)):
        case = to_case(record)
        if case["answers"] or include_unreferenced:
            yield case


__all__ = ["export_cases", "parse_since", "reference_of", "to_case"]

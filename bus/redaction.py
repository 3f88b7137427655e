"""PII redaction: emails, phone numbers and Luhn-valid card numbers, in text and in logs.

Pure functions plus a structlog processor; ``bus/logging.py`` installs it when the
``redact_pii`` setting is on (the default), so every process redacts its logs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_PHONES = (
    re.compile(r"(?<![\w+])\+\d[\d ().-]{6,18}\d(?!\w)"),  # international: +49 30 1234567
    re.compile(r"(?<!\w)\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w)"),  # NANP: (555) 123-4567
    re.compile(r"(?<![\w.])0\d{1,4}(?:[ -]\d{2,4}){2,4}(?!\w)(?!\.\d)"),  # 030 1234 5678
)
EMAIL_PLACEHOLDER = "[EMAIL]"
PHONE_PLACEHOLDER = "[PHONE]"
CARD_PLACEHOLDER = "[CARD]"


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return CARD_PLACEHOLDER if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return PHONE_PLACEHOLDER if 9 <= len(digits) <= 15 else match.group()


def redact_pii(text: str) -> str:
    """``text`` with emails, card numbers (Luhn-valid) and phone numbers replaced."""
    text = _EMAIL.sub(EMAIL_PLACEHOLDER, text)
    text = _CARD.sub(_card, text)
    for pattern in _PHONES:
        text = pattern.sub(_phone, text)
    return text


# Identifiers we generate; never rewritten (a hex id could look like digits to a regex).
SAFE_KEYS: frozenset[str] = frozenset(
    {"job_id", "step_id", "task_id", "trace_id", "tenant", "timestamp", "level", "logger"}
)


def redact_value(value: Any) -> Any:
    """``value`` with PII redacted in every string inside it (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact_pii(value)
    if isinstance(value, Mapping):
        return {k: v if k in SAFE_KEYS else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def redact_pii_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: put it before the renderer (``redact_pii`` setting)."""
    for key, value in list(event_dict.items()):
        if key not in SAFE_KEYS:
            event_dict[key] = redact_value(value)
    return event_dict



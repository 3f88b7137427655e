"""The body of a reply draft: greeting, the grounded answer, a sign-off. Pure text.

The ingress appends the quoted original; citations stay in the trace (not in the draft)
unless the caller passes ``sources`` explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_BRACKET_CITATION = re.compile(r"\s*\[(?:\d+(?:,\s*\d+)*|[A-Za-z0-9_.:/#-]+#\d+)\]")
_SAFE_NAME = re.compile(r"[^\w .'-]", re.UNICODE)


def first_name(sender_name: str | None) -> str | None:
    """A greeting name from a display name ("Smith, John" → "John", "jdoe" → None)."""
    if not sender_name:
        return None
    name = sender_name.strip().strip('"').strip()
    if "," in name:
        name = name.split(",", 1)[1].strip()
    name = _SAFE_NAME.sub("", name).strip()
    if not name or "@" in sender_name:
        return None
    token = name.split()[0]
    if len(token) < 2 or not token[0].isalpha():
        return None
    return token[:1].upper() + token[1:]


def strip_citation_marks(answer: str) -> str:
    """``[1]`` / ``[doc#3]`` markers are for the trace, not for the customer."""
    return _BRACKET_CITATION.sub("", answer).strip()


def compose_reply(
    question: str,
    answer: str,
    sender_name: str | None,
    *,
    sources: Sequence[str] = (),
    signature: str = "",
) -> str:
    """Draft body: "Hi NAME," + the answer (citation marks removed) + sign-off.

    ``question`` is accepted for providers that restate it; the offline composer does not
    echo it (the quoted original below the draft already carries it).
    """
    del question  # the quote carries it
    name = first_name(sender_name)
    greeting = f"Hi {name}," if name else "Hello,"
    body = strip_citation_marks(answer) or (
        "Thanks for your message. I could not find a reliable answer in our records yet; "
        "I will look into it and get back to you."
    )
    parts = [greeting, "", body]
    if sources:
        parts += ["", "Sources:", *[f"- {s}" for s in sources]]
    parts += ["", "Best regards,"]
    if signature:
        parts.append(signature)
    return "\n".join(parts).rstrip() + "\n"


__all__ = ["compose_reply", "first_name", "strip_citation_marks"]

"""The body of a reply draft: greeting, the grounded answer, a sign-off. Pure text.

The ingress appends the quoted original; citations stay in the trace (not in the draft)
unless the caller passes ``sources`` explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from schemas import JobResult

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


HOLDING_TEXT = (
    "Thanks for your message. I checked our archive and it holds no answer to your "
    "question that I can stand behind, so I will not guess. I am looking into it and "
    "will get back to you."
)


def holding_reply(sender_name: str | None, *, signature: str = "") -> str:
    """The honest draft when the archive has no answer that passed evaluation: it says so
    plainly and promises a follow-up (a person completes it before sending)."""
    return compose_reply("", HOLDING_TEXT, sender_name, signature=signature)


def grounded_body(result: JobResult) -> str:
    """A grounded draft: the generated reply, plus where in the archive the answer comes
    from (the cited messages' subjects/ids), so the reviewer can check it."""
    seen: list[str] = []
    for citation in result.citations:
        label = citation.title.strip() or citation.doc_id
        if label and label not in seen:
            seen.append(label)
    text = result.answer.rstrip()
    if not seen:
        return text + "\n"
    marker = "\nBest regards,"
    sources = "\n".join(f"- {s}" for s in seen[:3])
    block = f"\nFrom our archive:\n{sources}\n"
    if marker in text:
        head, _, tail = text.rpartition(marker)
        return f"{head.rstrip()}\n{block}{marker}{tail}\n"
    return f"{text}\n{block}"


__all__ = [
    "HOLDING_TEXT",
    "compose_reply",
    "first_name",
    "grounded_body",
    "holding_reply",
    "strip_citation_marks",
]

"""Guardrails: pure checks on what goes into and comes out of a language model.

- **Input limits**: queries and documents are bounded before they reach a prompt.
- **Retrieved text is data**: each chunk is fenced as ``<document id="...">...</document>``
  with any fence-breaking tags inside it neutralised, and text that looks like an
  instruction to the model (prompt injection) is flagged so the trace shows it.
- **Citations**: every cited chunk id must be one retrieved for this job; others are
  removed and flagged.
- **PII redaction**: emails, phone numbers and payment-card numbers (Luhn-checked) are
  replaced by placeholders; :func:`redact_pii_processor` does it for structlog events.

Both providers can use these; nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

from bus.redaction import (  # re-exported: redaction lives in bus for every process's logs
    luhn_ok,
    redact_pii,
    redact_pii_processor,
    redact_value,
)
from schemas import Chunk

# --- input limits ---------------------------------------------------------------------------

MAX_QUERY_CHARS = 4_000
MAX_DOCUMENT_CHARS = 8_000  # per chunk fenced into a prompt
MAX_CONTEXT_CHARS = 60_000  # all chunks of one prompt together


def clip(text: str, max_chars: int) -> tuple[str, bool]:
    """``text`` cut to ``max_chars`` (at a word boundary when one is near) and whether it was."""
    if len(text) <= max_chars:
        return text, False
    cut = text[:max_chars]
    space = cut.rfind(" ", max(0, max_chars - 200))
    return (cut[:space] if space > 0 else cut) + " …", True


def limit_context(
    chunks: Sequence[Chunk],
    *,
    max_chunk_chars: int = MAX_DOCUMENT_CHARS,
    max_total_chars: int = MAX_CONTEXT_CHARS,
) -> tuple[list[Chunk], list[str]]:
    """Chunks clipped to the per-chunk limit, in order, until the total limit; plus flags."""
    kept: list[Chunk] = []
    flags: list[str] = []
    total = 0
    for chunk in chunks:
        text, clipped = clip(chunk.text, max_chunk_chars)
        if total + len(text) > max_total_chars:
            flags.append(f"dropped:{chunk.chunk_id}")
            continue
        if clipped:
            flags.append(f"clipped:{chunk.chunk_id}")
        total += len(text)
        kept.append(chunk.model_copy(update={"text": text}) if clipped else chunk)
    return kept, flags


# --- prompt injection -----------------------------------------------------------------------

# None of these fires on any of the ~50k sentences of the shared SQuAD and SciFact corpora
# (tests/unit/test_guardrails.py checks it): the offline generator skips what they match.
INJECTION_PATTERNS: dict[str, re.Pattern[str]] = {
    name: re.compile(pattern, re.IGNORECASE)
    for name, pattern in {
        "ignore_instructions": (
            r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:previous|prior|above|"
            r"earlier|all|any|your|the)\b[^.\n]{0,20}\b(?:instructions?|prompts?|rules|"
            r"directions|guidelines|context)\b|"
            r"\b(?:ignore|disregard|forget)\s+(?:all\s+of\s+|everything\s+|anything\s+|what\s+)?"
            r"(?:the\s+|that\s+is\s+|written\s+)?(?:above(?![-\w])|previously\s+said|"
            r"you\s+(?:were|have\s+been)\s+told)|"
            r"\b(?:do\s+not|don't|stop)\s+(?:follow(?:ing)?|obey(?:ing)?)\s+(?:your|the)\s+"
            r"(?:previous|prior|above|original|system|earlier)\s+(?:instructions?|rules|"
            r"guidelines|prompt)\b"
        ),
        "new_instructions": (
            r"\b(?:new|updated|real|actual)\s+instructions?\s*:|"
            r"\byour\s+(?:new|real|actual|true)\s+(?:role|task|instructions?|goal|purpose|job)"
            r"\s+(?:is|are)\b"
        ),
        "role_override": (
            r"\byou\s+are\s+now\b|\bact\s+as\s+(?:an?\s+)?(?:unrestricted|jailbroken|dan)\b|"
            # "from now on, you should pay more" is an ordinary sentence (SQuAD); a role change
            # says how to be or answer
            r"\bfrom\s+now\s+on\s*,?\s+(?:you\s+(?:are|will|must|shall|only|always|never|"
            r"answer|reply|respond|act|say)|(?:always\s+|only\s+)?(?:answer|reply|respond))\b|"
            r"\bpretend\s+(?:that\s+)?you\s+are\b|\bpretend\s+to\s+be\s+(?:an?\s+)?(?:ai|"
            r"assistant|model|chatbot|unrestricted|jailbroken)\b|"
            r"\byou\s+are\s+no\s+longer\s+(?:an?\s+(?:ai|assistant|language\s+model)\b|claude\b|"
            r"chatgpt\b|bound\s+by\s+(?:any|your)\s+(?:rules|instructions|guidelines))"
        ),
        "addressed_to_model": (
            r"\bif\s+you\s+are\s+an?\s+(?:ai|artificial\s+intelligence|(?:large\s+)?language"
            r"\s+model|llm|ai\s+assistant|chatbot)\b|"
            r"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?(?:ai|llm|"
            r"assistant|language\s+model|chatbot)s?\s*:|"
            r"\b(?:ai|llms?|language\s+models?|(?:ai\s+)?assistants?|chatbots?)\s+(?:reading|"
            r"processing|summari[sz]ing)\s+this\b"
        ),
        "prompt_exfiltration": (
            r"\b(?:reveal|print|show|repeat|output|disclose|leak|dump|recite|tell\s+me|"
            r"write\s+out)\b[^.\n]{0,30}\b(?:system\s+prompt|(?:initial|hidden|"
            r"original|secret)\s+(?:prompt|instructions|message)|your\s+(?:instructions|prompt|"
            r"rules))\b"
        ),
        "role_tags": (
            r"</?\s*(?:system|assistant|user|instructions?)\s*>|\n\s*(?:Human|Assistant)\s*:|"
            r"<\|im_(?:start|end)\|>|\[/?INST\]|<<\s*/?SYS\s*>>"
        ),
        "fence_break": r"</?\s*(?:document|documents|email)\b",
        "tool_hijack": r"\b(?:call|invoke|use)\s+the\s+\w+\s+tool\b",
    }.items()
}


def find_injections(text: str) -> list[str]:
    """Names of the injection patterns ``text`` matches (empty when it looks like data)."""
    return [name for name, pattern in INJECTION_PATTERNS.items() if pattern.search(text)]


_FENCE_TAG = re.compile(r"<(/?\s*(?:document|documents|email)\b)", re.IGNORECASE)


def neutralise_fences(text: str) -> str:
    """Make ``<document``/``</document>`` (and ``email``) inside data harmless: ``&lt;...``."""
    return _FENCE_TAG.sub(r"&lt;\1", text)


def fence_document(chunk: Chunk) -> str:
    """One chunk as a data block the prompt says never to obey."""
    attrs = f'id="{escape(chunk.chunk_id, quote=True)}"'
    if chunk.title:
        attrs += f' title="{escape(chunk.title, quote=True)}"'
    if chunk.source and chunk.source != "internal":
        attrs += f' source="{escape(chunk.source, quote=True)}"'
    return f"<document {attrs}>\n{neutralise_fences(chunk.text)}\n</document>"


def injection_flags(chunks: Sequence[Chunk]) -> list[str]:
    """``injection:<chunk_id>:<pattern>`` for each pattern each chunk (title and text)
    matches: what both providers report for retrieved text."""
    return [
        f"injection:{chunk.chunk_id}:{name}"
        for chunk in chunks
        for name in find_injections(f"{chunk.title}\n{chunk.text}")
    ]


def email_injection_flags(email: Mapping[str, str]) -> list[str]:
    """``injection:email:<pattern>`` for each pattern the email's fields match."""
    return [
        f"injection:email:{name}"
        for name in find_injections("\n".join(str(v) for v in email.values()))
    ]


def fence_documents(chunks: Sequence[Chunk]) -> tuple[str, list[str]]:
    """All chunks fenced, in order, inside ``<documents>``; plus injection flags
    (``injection:<chunk_id>:<pattern>``)."""
    body = "\n".join(fence_document(c) for c in chunks)
    return f"<documents>\n{body}\n</documents>", injection_flags(chunks)


def fence_email(email: Mapping[str, str]) -> tuple[str, list[str]]:
    """An inbound email (``subject``/``from``/``body``) fenced as untrusted data; plus flags."""
    parts = [
        f"<{key}>{neutralise_fences(str(email[key]))}</{key}>"
        for key in ("from", "subject", "body")
        if email.get(key)
    ]
    return "<email>\n" + "\n".join(parts) + "\n</email>", email_injection_flags(email)


# --- citations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CitationCheck:
    valid: list[str] = field(default_factory=list)  # cited and retrieved, first-seen order
    invalid: list[str] = field(default_factory=list)  # cited but not retrieved

    @property
    def flags(self) -> list[str]:
        return [f"citation_not_retrieved:{cid}" for cid in self.invalid]


def check_citations(cited: Iterable[str], retrieved: Iterable[str]) -> CitationCheck:
    """Split cited chunk ids into those retrieved for this job and those that were not."""
    allowed = set(retrieved)
    valid: list[str] = []
    invalid: list[str] = []
    for cid in dict.fromkeys(cited):
        (valid if cid in allowed else invalid).append(cid)
    return CitationCheck(valid=valid, invalid=invalid)


def citation_problems(
    answer: str, cited: Sequence[str], retrieved: Sequence[str], *, no_answer: bool = False
) -> list[str]:
    """What is wrong with an answer's citations, as reviewer feedback (empty = nothing).

    An answer that claims something from a non-empty context must cite at least one
    retrieved chunk; it may never cite a chunk that was not retrieved.
    """
    check = check_citations(cited, retrieved)
    problems = [f"cites {cid}, which was not retrieved for this job" for cid in check.invalid]
    if answer.strip() and not no_answer and retrieved and not check.valid:
        problems.append("the answer cites none of the retrieved documents")
    return problems


__all__ = [
    "INJECTION_PATTERNS",
    "MAX_CONTEXT_CHARS",
    "MAX_DOCUMENT_CHARS",
    "MAX_QUERY_CHARS",
    "CitationCheck",
    "check_citations",
    "citation_problems",
    "clip",
    "email_injection_flags",
    "fence_document",
    "fence_documents",
    "fence_email",
    "find_injections",
    "injection_flags",
    "limit_context",
    "luhn_ok",
    "neutralise_fences",
    "redact_pii",
    "redact_pii_processor",
    "redact_value",
]

"""Files to structured text: PDF (text layer), DOCX, HTML, Markdown, plain text, .eml.

``parse_file`` sniffs the real format from the first bytes (``sniff``), enforces the
per-file limits (``ParseLimits``) and returns ``Parsed`` parts with their page and section,
or raises ``UnreadableFile`` with the reason. ``parse_isolated`` runs it in a child process
under a time and memory cap, so a parser that crashes or hangs on a hostile file costs
that file only (``workers/parsing/sandbox.py``). ``to_document`` makes the ``Document``
the ingest path chunks (``workers/store/chunking.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workers.parsing.files import parse_file
from workers.parsing.sandbox import parse_isolated
from workers.parsing.sniff import KINDS, sniff
from workers.parsing.types import Parsed, ParseLimits, Part, UnreadableFile

if TYPE_CHECKING:
    from schemas import Document


def to_document(
    parsed: Parsed,
    *,
    doc_id: str,
    title: str = "",
    source: str = "internal",
    metadata: dict[str, Any] | None = None,
) -> Document:
    from schemas import Document, DocumentPart  # here: the parser child never needs pydantic

    return Document(
        doc_id=doc_id,
        title=title or parsed.title or doc_id,
        text=parsed.text,
        source=source,
        metadata=dict(metadata or {}),
        parts=[DocumentPart(text=p.text, page=p.page, section=p.section) for p in parsed.parts],
    )


__all__ = [
    "KINDS",
    "ParseLimits",
    "Parsed",
    "Part",
    "UnreadableFile",
    "parse_file",
    "parse_isolated",
    "sniff",
    "to_document",
]

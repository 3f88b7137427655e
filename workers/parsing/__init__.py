"""Files to structured text: PDF (text layer), DOCX, HTML, Markdown, plain text, .eml.

``parse_file`` sniffs the real format from the first bytes (``sniff``), enforces the
per-file limits (``ParseLimits``) and returns ``Parsed`` parts with their page and section,
or raises ``UnreadableFile`` with the reason. ``parse_isolated`` runs it in a child process
under a time and memory cap, so a parser that crashes or hangs on a hostile file costs
that file only (``workers/parsing/sandbox.py``). ``to_document`` makes the ``Document``
the ingest path chunks (``workers/store/chunking.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from schemas import Document
from workers.parsing.sandbox import parse_isolated
from workers.parsing.sniff import KINDS, sniff
from workers.parsing.types import Parsed, ParseLimits, UnreadableFile


def parse_file(path: Path, limits: ParseLimits, *, name: str | None = None) -> Parsed:
    """Parse ``path`` in this process (``name``: the file's name as its sender gave it)."""
    name = name or path.name
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise UnreadableFile(f"unreadable: {exc.strerror}") from exc
    if size > limits.max_bytes:
        raise UnreadableFile(f"{size} bytes; the limit is {limits.max_bytes} bytes per file")
    kind = sniff(name, head)
    if kind == "pdf":
        from workers.parsing.pdf import parse_pdf

        return parse_pdf(path, limits)
    if kind == "docx":
        from workers.parsing.office import parse_docx

        return parse_docx(path, limits)
    raw = path.read_bytes()
    if kind == "html":
        from workers.parsing.html import parse_html_bytes
        from workers.parsing.text import decode_utf8

        decode_utf8(raw)  # a non-UTF-8 page is refused like any other text
        return parse_html_bytes(raw, limits)
    from workers.parsing.text import parse_eml, parse_text

    if kind == "eml":
        return parse_eml(raw, limits)
    return parse_text(raw, limits, markdown=kind == "markdown")


def to_document(
    parsed: Parsed,
    *,
    doc_id: str,
    title: str = "",
    source: str = "internal",
    metadata: dict[str, Any] | None = None,
) -> Document:
    return Document(
        doc_id=doc_id,
        title=title or parsed.title or doc_id,
        text=parsed.text,
        source=source,
        metadata=dict(metadata or {}),
        parts=parsed.parts,
    )


__all__ = [
    "KINDS",
    "ParseLimits",
    "Parsed",
    "UnreadableFile",
    "parse_file",
    "parse_isolated",
    "sniff",
    "to_document",
]

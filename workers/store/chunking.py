"""Split documents into overlapping chunks with stable ids (``doc_id#index``).

Markdown-style headings (``#``, ``##`` …) split a document into sections first; each
chunk then records its section path (``metadata["section"]``, e.g. ``"Install > Linux"``),
which the store indexes and embeds with the chunk together with the document title
(contextual chunks). Within a section, chunks are windows of at most ``max_words`` words,
consecutive ones sharing ``overlap`` words.

A document a parser read (``Document.parts``: PDF pages, DOCX/HTML sections) is chunked part
by part instead: no chunk spans two parts, and each records the part's ``page`` and
``section`` in its metadata, which citations carry (``Citation.of``).
"""

from __future__ import annotations

import re

from schemas import Chunk, Document
from workers.parsing.headings import HEADING as _HEADING
from workers.parsing.headings import sections

_WORD = re.compile(r"\S+")


def windows(text: str, *, max_words: int, overlap: int) -> list[str]:
    words = _WORD.findall(text)
    if not words:
        return []
    step = max(1, max_words - overlap)
    pieces: list[str] = []
    for start in range(0, len(words), step):
        pieces.append(" ".join(words[start : start + max_words]))
        if start + max_words >= len(words):
            break
    return pieces


def chunk_document(doc: Document, *, max_words: int = 220, overlap: int = 40) -> list[Chunk]:
    """Chunks of at most ``max_words`` words, consecutive ones sharing ``overlap`` words."""
    parts: list[tuple[str, str, int | None]]
    if doc.parts is not None:
        parts = [(p.section, p.text, p.page) for p in doc.parts]
    elif _has_headings(doc.text):
        parts = [(path, body, None) for path, body in sections(doc.text)]
    else:
        parts = [("", doc.text, None)]
    chunks: list[Chunk] = []
    for path, body, page in parts:
        for text in windows(body, max_words=max_words, overlap=overlap):
            metadata = dict(doc.metadata)
            if path:
                metadata["section"] = path
            if page is not None:
                metadata["page"] = page
            chunks.append(
                Chunk(
                    chunk_id=f"{doc.doc_id}#{len(chunks)}",
                    doc_id=doc.doc_id,
                    title=doc.title,
                    text=text,
                    source=doc.source,
                    chunk_index=len(chunks),
                    metadata=metadata,
                )
            )
    return chunks


def _has_headings(text: str) -> bool:
    return any(_HEADING.match(line) for line in text.splitlines())

"""Split documents into overlapping chunks with stable ids (``doc_id#index``)."""

from __future__ import annotations

import re

from schemas import Chunk, Document

_WORD = re.compile(r"\S+")


def chunk_document(doc: Document, *, max_words: int = 220, overlap: int = 40) -> list[Chunk]:
    """Chunks of at most ``max_words`` words, consecutive ones sharing ``overlap`` words."""
    words = _WORD.findall(doc.text)
    if not words:
        return []
    step = max(1, max_words - overlap)
    pieces: list[str] = []
    for start in range(0, len(words), step):
        pieces.append(" ".join(words[start : start + max_words]))
        if start + max_words >= len(words):
            break
    return [
        Chunk(
            chunk_id=f"{doc.doc_id}#{i}",
            doc_id=doc.doc_id,
            title=doc.title,
            text=text,
            source=doc.source,
            chunk_index=i,
            metadata=dict(doc.metadata),
        )
        for i, text in enumerate(pieces)
    ]

"""Contextual retrieval at ingestion, as Anthropic described it.

Each chunk gets one or two sentences situating it in its whole document, written by a small
model with the document cached across that document's chunks; the context is prepended to
the chunk text so both keyword and vector search see it. Chunk ids do not change, so
re-indexing is an idempotent upsert, and a chunk that already carries a context (from an
interrupted earlier run) is not sent again: resumable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas import Chunk, Document, Usage

CONTEXT_KEY = "context"  # chunk metadata: the generated context
PROMPT_KEY = "context_prompt"  # chunk metadata: the prompt version that wrote it


class Contextualizer(Protocol):
    """What :class:`workers.providers.anthropic.AnthropicProvider` offers for this."""

    @property
    def contextualize_prompt_version(self) -> str: ...

    def contextualize(self, document_text: str, chunk_text: str) -> tuple[str, Usage]: ...


@dataclass
class ContextualizedDocument:
    doc_id: str
    chunks: list[Chunk]
    usage: Usage = field(default_factory=Usage)
    skipped: int = 0  # chunks that already had a context


def with_context(chunk: Chunk, context: str, prompt_version: str) -> Chunk:
    """``chunk`` with ``context`` prepended to its text and recorded in its metadata."""
    original = chunk.metadata.get("original_text", chunk.text)
    return chunk.model_copy(
        update={
            "text": f"{context}\n\n{original}" if context else original,
            "metadata": {
                **chunk.metadata,
                CONTEXT_KEY: context,
                PROMPT_KEY: prompt_version,
                "original_text": original,
            },
        }
    )


def contextualize_document(
    contextualizer: Contextualizer, document: Document, chunks: Sequence[Chunk]
) -> ContextualizedDocument:
    """Every chunk of ``document`` with its context; the usage (and so cost) of doing it."""
    out: list[Chunk] = []
    usage = Usage()
    skipped = 0
    version = contextualizer.contextualize_prompt_version
    for chunk in chunks:
        if chunk.metadata.get(PROMPT_KEY) == version:
            out.append(chunk)
            skipped += 1
            continue
        text = str(chunk.metadata.get("original_text", chunk.text))
        context, used = contextualizer.contextualize(document.text, text)
        usage = usage + used
        out.append(with_context(chunk, context, version))
    return ContextualizedDocument(doc_id=document.doc_id, chunks=out, usage=usage, skipped=skipped)


__all__ = [
    "CONTEXT_KEY",
    "PROMPT_KEY",
    "ContextualizedDocument",
    "Contextualizer",
    "contextualize_document",
    "with_context",
]

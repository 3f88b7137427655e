"""Documents, chunks and citations."""

from __future__ import annotations

from pydantic import Field

from schemas.base import Message
from schemas.limits import Metadata


class Document(Message):
    """A source document before chunking."""

    doc_id: str = Field(min_length=1, max_length=512)
    title: str = ""
    text: str
    source: str = "internal"
    metadata: Metadata = Field(default_factory=dict)


class Chunk(Message):
    """A retrievable piece of a document. ``chunk_id`` is stable: ``doc_id#index``."""

    chunk_id: str
    doc_id: str
    title: str = ""
    text: str
    source: str = "internal"
    chunk_index: int = 0
    metadata: Metadata = Field(default_factory=dict)


class ScoredChunk(Message):
    chunk: Chunk
    score: float
    rank: int = 0
    retriever: str = ""


class Citation(Message):
    """A pointer from the answer to a chunk it used."""

    chunk_id: str
    doc_id: str
    title: str = ""
    source: str = "internal"
    quote: str = ""
    url: str | None = None

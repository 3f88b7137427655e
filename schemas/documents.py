"""Documents, chunks and citations."""

from __future__ import annotations

from pydantic import Field

from schemas.base import Message
from schemas.limits import Metadata


class DocumentPart(Message):
    """A run of a document's text with its place: a PDF page and/or a heading path."""

    text: str
    page: int | None = Field(None, ge=1)
    section: str = ""


class Document(Message):
    """A source document before chunking.

    ``parts`` (optional) keep the structure a parser found (pages, sections); chunks never
    span two parts and carry the part's ``page`` and ``section`` in their metadata. Without
    parts, ``text`` is chunked by its Markdown headings as before.
    """

    doc_id: str = Field(min_length=1, max_length=512)
    title: str = ""
    text: str
    source: str = "internal"
    metadata: Metadata = Field(default_factory=dict)
    parts: list[DocumentPart] | None = None


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
    page: int | None = None  # the PDF page the chunk came from (1-based), when known
    section: str | None = None  # the heading path, e.g. "Install > Linux", when known

    @classmethod
    def of(cls, chunk: Chunk, *, quote: str = "") -> Citation:
        """The citation of ``chunk``: its ids, title, source, url and location."""
        meta = chunk.metadata
        url, page, section = meta.get("url"), meta.get("page"), meta.get("section")
        return cls(
            chunk_id=chunk.chunk_id,
            doc_id=chunk.doc_id,
            title=chunk.title,
            source=chunk.source,
            quote=quote,
            url=url if isinstance(url, str) else None,
            page=page if isinstance(page, int) and not isinstance(page, bool) else None,
            section=section if isinstance(section, str) and section else None,
        )

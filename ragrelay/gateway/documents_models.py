"""Bodies of the documents API (what the OpenAPI document shows)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas import DocumentRecord, IngestRecord
from schemas.limits import Metadata

DOC_ID_PATTERN = r"^[A-Za-z0-9_.@-]+$"


class TextDocument(BaseModel):
    """A document sent as JSON text (``POST /v1/documents`` with application/json)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    doc_id: str | None = Field(None, min_length=1, max_length=200, pattern=DOC_ID_PATTERN)
    title: str = Field("", max_length=1_000)
    text: str = Field(min_length=1)
    source: str = Field("upload", min_length=1, max_length=64)
    metadata: Metadata = Field(default_factory=dict)


class IngestLinks(BaseModel):
    self: str
    events: str


class IngestAccepted(BaseModel):
    ingest_id: str
    status: str = "queued"
    files: int
    doc_ids: list[str]
    links: IngestLinks


class DocumentPage(BaseModel):
    documents: list[DocumentRecord]
    next_after: str | None = Field(
        None, description="pass as `after` for the next page; null on the last page"
    )


class Deleted(BaseModel):
    doc_id: str
    deleted: bool
    chunks: int = 0
    ingest_id: str


__all__ = [
    "DOC_ID_PATTERN",
    "Deleted",
    "DocumentPage",
    "IngestAccepted",
    "IngestLinks",
    "IngestRecord",
    "TextDocument",
]

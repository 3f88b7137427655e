"""The documents API's messages: the ingest task of uploaded files or texts, each file's
outcome, the ingest's record, and the registry record of one stored document."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.base import Message
from schemas.limits import Metadata

TenantId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
DocId = Annotated[str, Field(min_length=1, max_length=512)]

Outcome = Literal["indexed", "replaced", "unchanged", "renamed", "deleted", "skipped", "failed"]
IngestStatus = Literal["queued", "running", "succeeded", "partial", "failed"]


class DocumentItem(Message):
    """One file (its bytes wait in Redis under ``blob_key``) or one text to ingest."""

    doc_id: DocId
    name: str = ""  # the file name as sent (format sniffing uses its extension)
    title: str = ""
    text: str | None = None  # a JSON text document; else the bytes are at blob_key
    blob_key: str | None = None
    size: int = Field(0, ge=0)
    content_hash: str = ""  # sha256 of the bytes (or of the text, UTF-8)
    source: str = "upload"
    metadata: Metadata = Field(default_factory=dict)
    refused: str = ""  # refused at the door (e.g. too large): reported as skipped, not read
    rename_from: str | None = None  # the same content under this old doc id (a sync rename)


class DocumentsTask(Message):
    """Ingest (or delete) documents of ``tenant``; outcomes go to the ingest's record."""

    ingest_id: str = Field(min_length=1, max_length=64)
    tenant: TenantId
    items: list[DocumentItem] = Field(default_factory=list)
    delete: list[str] = Field(default_factory=list)  # doc ids to delete
    max_pages: int = Field(2_000, ge=1)
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1)
    parse_timeout_s: float = Field(60.0, gt=0)
    ocr: bool = False  # read scanned pages and images with Tesseract


class FileOutcome(Message):
    name: str = ""
    doc_id: str
    outcome: Outcome
    reason: str = ""  # why it was skipped or failed; empty when it went in
    chunks: int = 0
    page_count: int = 0


class IngestRecord(Message):
    ingest_id: str
    tenant: str
    status: IngestStatus = "queued"
    total: int = 0
    files: list[FileOutcome] = Field(default_factory=list)
    created_at: float = 0.0
    finished_at: float | None = None


class DocumentRecord(Message):
    """What the registry knows of a stored document (``GET /v1/documents/{doc_id}``)."""

    doc_id: str
    tenant: str
    title: str = ""
    source: str = "upload"
    name: str = ""
    format: str = ""
    content_hash: str
    size: int = 0
    chunks: int = 0
    pages: int = 0
    metadata: Metadata = Field(default_factory=dict)
    ingested_at: float
    ingest_id: str = ""

"""Ingestion: batches of documents sent to the ``ingest`` queue."""

from __future__ import annotations

from pydantic import Field

from schemas.base import Message
from schemas.documents import Document
from schemas.jobs import Usage


class IngestTask(Message):
    run_id: str
    batch: int = Field(ge=0)
    tenant: str = Field("default", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    documents: list[Document]
    contextualize: bool = False  # prepend an LLM-written context to each chunk (Claude only)


class IngestResult(Message):
    run_id: str
    batch: int
    documents: int
    chunks: int
    failed_chunks: list[str] = Field(default_factory=list)  # "chunk_id: reason", not written
    contextualized: int = 0  # chunks given a context by the model in this batch
    usage: Usage = Field(default_factory=Usage)  # what contextualizing cost

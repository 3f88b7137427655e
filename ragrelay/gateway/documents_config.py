"""Knobs of the documents API. Env prefix ``RAGRELAY_DOCS_``; built at the entry point."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DocumentsConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAGRELAY_DOCS_", extra="ignore")

    max_upload_bytes: int = Field(
        100 * 1024 * 1024, ge=1024, description="one POST /v1/documents body (413 beyond)"
    )
    max_file_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="one file; larger files are skipped with the reason"
    )
    max_files: int = Field(200, ge=1, description="files in one upload (413 beyond)")
    max_text_chars: int = Field(2_000_000, ge=1, description="a JSON text document (422 beyond)")
    max_pages: int = Field(2_000, ge=1, description="PDF pages per file; more: skipped")
    parse_timeout_s: float = Field(60.0, gt=0, description="parsing one file; longer: skipped")
    ocr: bool = Field(
        False, description="read scans and images with Tesseract (needs tesseract-ocr)"
    )
    tenant_max_documents: int = Field(100_000, ge=1, description="documents per tenant (429)")
    tenant_max_bytes: int = Field(
        10 * 1024**3, ge=1, description="stored upload bytes per tenant (413)"
    )
    blob_ttl_s: int = Field(24 * 3600, ge=60, description="uploaded bytes wait this long")
    delete_wait_s: float = Field(
        10.0, ge=0, description="DELETE waits this long for the workers (then answers 202)"
    )

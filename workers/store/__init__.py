"""Document stores: the embedded SQLite store (default) and, when configured, Weaviate."""

from __future__ import annotations

from bus.errors import ConfigError
from bus.settings import Settings
from workers.ports import DocumentStore, Embedder
from workers.store.chunking import chunk_document
from workers.store.embedded import EmbeddedStore, SearchConfig


def open_embedder(settings: Settings) -> Embedder:
    from workers.embeddings import load_embedder

    return load_embedder(settings.embedder, cache_dir=settings.model_cache_dir)


def open_store(settings: Settings, embedder: Embedder | None = None) -> DocumentStore:
    """The store the settings select: Weaviate when ``RAGRELAY_WEAVIATE_URL`` is set."""
    if settings.weaviate_url:
        try:
            from workers.store.weaviate import WeaviateStore
        except ImportError as exc:
            raise ConfigError(
                "RAGRELAY_WEAVIATE_URL is set but weaviate-client is not installed: "
                "pip install 'ragrelay[weaviate]'."
            ) from exc
        return WeaviateStore(settings, embedder or open_embedder(settings))
    if embedder is None and settings.embedder != "auto":
        embedder = open_embedder(settings)
    # The file name carries the schema version: a store written by an older layout is
    # never misread (re-ingest into the new file instead).
    return EmbeddedStore(settings.store_dir / "chunks-v2.sqlite3", embedder,
                         config=SearchConfig(sentence_window=settings.sentence_window),
                         model_cache=settings.model_cache_dir)


__all__ = ["DocumentStore", "EmbeddedStore", "chunk_document", "open_embedder", "open_store"]

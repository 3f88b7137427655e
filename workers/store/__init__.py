"""Document stores: the embedded SQLite store (default) and, when configured, Weaviate."""

from __future__ import annotations

from bus.errors import ConfigError
from bus.settings import Settings
from workers.ports import DocumentStore, Embedder
from workers.settings import StoreSettings, WorkerSettings
from workers.store.chunking import chunk_document
from workers.store.embedded import EmbeddedStore, SearchConfig


def open_embedder(store: StoreSettings) -> Embedder:
    from workers.embeddings import load_embedder

    return load_embedder(store.embedder, cache_dir=store.model_cache_dir)


def open_store(
    settings: Settings, workers: WorkerSettings, embedder: Embedder | None = None
) -> DocumentStore:
    """The store ``RAGRELAY_STORE`` selects: the embedded one (a file under the data dir)
    or Weaviate."""
    store = workers.store
    if store.kind == "weaviate":
        try:
            from workers.store.weaviate import WeaviateStore
        except ImportError as exc:
            raise ConfigError(
                "RAGRELAY_STORE=weaviate but weaviate-client is not installed: "
                "pip install 'ragrelay[weaviate]'."
            ) from exc
        return WeaviateStore(workers.weaviate, embedder or open_embedder(store))
    if embedder is None and store.embedder != "auto":
        embedder = open_embedder(store)
    # The file name carries the schema version: a store written by an older layout is
    # never misread (re-ingest into the new file instead).
    return EmbeddedStore(
        settings.store_dir / "chunks-v2.sqlite3",
        embedder,
        config=SearchConfig(sentence_window=store.sentence_window),
        model_cache=store.model_cache_dir,
    )


__all__ = ["DocumentStore", "EmbeddedStore", "chunk_document", "open_embedder", "open_store"]

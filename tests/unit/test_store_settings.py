"""The settings choose the embedded store's sentence windows (RAGRELAY_SENTENCE_WINDOW)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from bus.settings import Settings
from schemas import Chunk
from workers.embeddings import HashingEmbedder
from workers.store import EmbeddedStore, open_store

TEXT = "Vitamin D is made in the skin. It helps bones take up calcium. Too little causes rickets."


def _window_rows(store: EmbeddedStore) -> int:
    with sqlite3.connect(store.path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM sentence_vectors").fetchone()[0])


@pytest.mark.parametrize(("window", "rows"), [(2, 1), (0, 0)])
def test_sentence_window_setting_decides_what_ingest_embeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, rows: int
) -> None:
    monkeypatch.setenv("RAGRELAY_SENTENCE_WINDOW", str(window))
    store = open_store(Settings(data_dir=tmp_path), HashingEmbedder())
    assert isinstance(store, EmbeddedStore)
    assert store.config.sentence_window == window
    store.upsert("t", [Chunk(chunk_id="d#0", doc_id="d", title="Vitamin D", text=TEXT)])
    assert _window_rows(store) == rows
    assert [h.chunk.chunk_id for h in store.search("t", "rickets calcium", k=1)] == ["d#0"]


def test_a_negative_sentence_window_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGRELAY_SENTENCE_WINDOW", "-1")
    with pytest.raises(ValidationError, match="sentence_window"):
        Settings()

"""The embedded store: hybrid search, tenants, filters, idempotent writes, atomicity."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from bus.settings import Settings
from schemas import Chunk, Document
from workers.embeddings import HashingEmbedder
from workers.ports import DocumentStore, Vector
from workers.settings import StoreSettings, load_worker_settings
from workers.store import open_store
from workers.store.chunking import chunk_document
from workers.store.embedded import EmbeddedStore, SearchConfig, context_text, sentence_units

DOCS = [
    Document(
        doc_id="cats",
        title="Cats",
        text="Cats are small domesticated felines that purr.",
        metadata={"lang": "en"},
    ),
    Document(
        doc_id="dogs",
        title="Dogs",
        text="Dogs are loyal companions that bark at strangers.",
        metadata={"lang": "en"},
    ),
    Document(
        doc_id="vaccines",
        title="Vaccination",
        text="Vaccines train the immune system to recognise viruses.",
        metadata={"lang": "de"},
    ),
]


def _chunks(docs: Sequence[Document] = DOCS) -> list[Chunk]:
    return [c for d in docs for c in chunk_document(d)]


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / "store.sqlite3", HashingEmbedder())
    s.upsert("a", _chunks())
    return s


def test_store_satisfies_the_port(store: EmbeddedStore) -> None:
    assert isinstance(store, DocumentStore)


def test_keyword_query_finds_the_matching_document(store: EmbeddedStore) -> None:
    hits = store.search("a", "why do cats purr", k=3)
    assert hits[0].chunk.doc_id == "cats"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert hits[0].retriever == "hybrid"


def test_stemming_matches_other_word_forms(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "s.sqlite3", HashingEmbedder(), config=SearchConfig(mode="bm25"))
    s.upsert("a", _chunks())
    assert s.search("a", "vaccination trains immunity", k=1)[0].chunk.doc_id == "vaccines"
    assert s.search("a", "barking", k=1)[0].chunk.doc_id == "dogs"


def test_stop_words_alone_match_nothing_by_keyword(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "s.sqlite3", HashingEmbedder(), config=SearchConfig(mode="bm25"))
    s.upsert("a", _chunks())
    assert s.search("a", "the are that", k=3) == []


def test_a_tenant_never_sees_another_tenants_chunks(store: EmbeddedStore) -> None:
    store.upsert("b", _chunks([Document(doc_id="secret", title="Cats", text="Cats secret plan.")]))
    a_hits = store.search("a", "cats secret plan", k=10)
    b_hits = store.search("b", "cats purr", k=10)
    assert "secret" not in {h.chunk.doc_id for h in a_hits}
    assert {h.chunk.doc_id for h in b_hits} == {"secret"}
    assert store.search("nobody", "cats", k=5) == []


def test_metadata_and_doc_filters(store: EmbeddedStore) -> None:
    hits = store.search("a", "cats dogs vaccines", k=10, filters={"lang": "de"})
    assert {h.chunk.doc_id for h in hits} == {"vaccines"}
    hits = store.search("a", "animals", k=10, filters={"doc_id": "dogs"})
    assert {h.chunk.doc_id for h in hits} <= {"dogs"}
    assert store.search("a", "cats", k=10, filters={"lang": "fr"}) == []


def test_upsert_is_idempotent_by_chunk_id(store: EmbeddedStore) -> None:
    before = store.count("a")
    store.upsert("a", _chunks())
    assert store.count("a") == before


def test_delete_then_reingest_restores_search(store: EmbeddedStore) -> None:
    assert store.delete_documents("a", ["cats"]) == 1
    assert "cats" not in {h.chunk.doc_id for h in store.search("a", "cats purr", k=5)}
    assert store.delete_documents("a", ["cats"]) == 0
    store.upsert("a", _chunks(DOCS[:1]))
    assert store.search("a", "cats purr", k=1)[0].chunk.doc_id == "cats"


def test_replace_documents_drops_stale_chunks(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "s.sqlite3", HashingEmbedder())
    long = Document(doc_id="long", title="Long", text=" ".join(f"w{i}" for i in range(500)))
    s.upsert("a", chunk_document(long))
    assert s.count("a") > 1
    s.replace_documents("a", chunk_document(long.model_copy(update={"text": "short now"})))
    assert s.count("a") == 1


class _FailingEmbedder(HashingEmbedder):
    def embed(self, texts: Sequence[str]) -> Vector:
        raise RuntimeError("model crashed")


def test_a_failed_ingest_leaves_nothing_written(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "s.sqlite3", _FailingEmbedder())
    with pytest.raises(RuntimeError):
        s.upsert("a", _chunks())
    assert s.count("a") == 0


def test_writes_from_another_process_handle_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    reader = EmbeddedStore(path, HashingEmbedder())
    assert reader.search("a", "cats", k=1) == []
    writer = EmbeddedStore(path, HashingEmbedder())
    writer.upsert("a", _chunks())
    assert reader.search("a", "cats purr", k=1)[0].chunk.doc_id == "cats"


def test_store_refuses_vectors_from_another_embedder(store: EmbeddedStore) -> None:
    from bus.errors import ConfigError

    other = EmbeddedStore(store.path, HashingEmbedder(dim=64))
    with pytest.raises(ConfigError, match="re-ingest"):
        other.search("a", "cats", k=1)


def _renamed(name: str) -> HashingEmbedder:
    embedder = HashingEmbedder()
    embedder.name = name
    return embedder


def test_int8_and_float_vectors_of_one_model_are_searched_together(tmp_path: Path) -> None:
    from bus.errors import ConfigError

    path = tmp_path / "s.sqlite3"
    EmbeddedStore(path, _renamed("all-MiniLM-L6-v2-int8@256")).upsert("a", _chunks())
    float_model = EmbeddedStore(path, _renamed("all-MiniLM-L6-v2@256"))
    assert float_model.search("a", "cats purr", k=1)[0].chunk.doc_id == "cats"
    shorter = EmbeddedStore(path, _renamed("all-MiniLM-L6-v2@128"))
    with pytest.raises(ConfigError, match="re-ingest"):
        shorter.search("a", "cats", k=1)


def test_contextual_text_carries_title_and_section() -> None:
    chunk = Chunk(
        chunk_id="d#0",
        doc_id="d",
        title="Guide",
        text="Body.",
        metadata={"section": ["Install", "Linux"]},
    )
    assert context_text(chunk) == "Guide\nInstall > Linux\nBody."


def test_title_only_match_is_found_with_contextual_chunks(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "s.sqlite3", HashingEmbedder(), config=SearchConfig(mode="bm25"))
    s.upsert(
        "a",
        [
            Chunk(
                chunk_id="x#1",
                doc_id="x",
                title="Photosynthesis",
                text="It happens in chloroplasts.",
                chunk_index=1,
            )
        ],
    )
    assert s.search("a", "photosynthesis", k=1)[0].chunk.chunk_id == "x#1"


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
@pytest.mark.parametrize("fusion", ["rrf", "score"])
def test_every_mode_ranks_the_obvious_document_first(
    tmp_path: Path, mode: str, fusion: str
) -> None:
    s = EmbeddedStore(
        tmp_path / "s.sqlite3",
        HashingEmbedder(),
        config=SearchConfig(mode=mode, fusion=fusion, prf=True, feedback=True),
    )
    s.upsert("a", _chunks())
    assert s.search("a", "loyal dogs bark", k=2)[0].chunk.doc_id == "dogs"


def test_hashing_embedder_is_deterministic_and_unit_length() -> None:
    e = HashingEmbedder()
    a, b = e.embed(["hello world"]), e.embed(["hello world"])
    assert np.array_equal(a, b)
    assert abs(float(np.linalg.norm(a[0])) - 1.0) < 1e-5
    assert e.embed([]).shape == (0, e.dim)


def test_load_embedder_names() -> None:
    from bus.errors import ConfigError
    from workers.embeddings import load_embedder

    assert load_embedder("hashing").name == "hashing-256"
    with pytest.raises(ConfigError, match="unknown embedder"):
        load_embedder("bert-huge")


def _plain_store(tmp_path: Path, docs: dict[str, str], config: SearchConfig) -> EmbeddedStore:
    s = EmbeddedStore(tmp_path / f"s{abs(hash(config))}.sqlite3", HashingEmbedder(), config=config)
    s.upsert("a", [Chunk(chunk_id=f"{d}#0", doc_id=d, title="", text=t) for d, t in docs.items()])
    return s


def test_adjacent_query_terms_outrank_the_same_terms_apart(tmp_path: Path) -> None:
    # same terms, same lengths: unigram BM25 ties; only "a" has "heart attack" side by side
    docs = {"a": "heart attack rates rose", "b": "attack rates heart rose"}
    scores = {}
    for weight in (0.0, 0.2):
        s = _plain_store(tmp_path, docs, SearchConfig(mode="bm25", bigram_weight=weight))
        scores[weight] = {h.chunk.doc_id: h.score for h in s.search("a", "heart attack", k=2)}
    assert scores[0.0]["a"] == pytest.approx(scores[0.0]["b"])
    assert scores[0.2]["a"] > scores[0.2]["b"] == pytest.approx(scores[0.0]["b"])


def test_dense_feedback_pulls_up_neighbours_of_the_best_hit(tmp_path: Path) -> None:
    # "c" shares no word with the query but two with the best hit "a"; "d" shares nothing
    docs = {
        "a": "purring felines whiskers tails",
        "c": "whiskers tails claws fur",
        "d": "tax forms deadline april",
    }
    ranks = {}
    for n in (0, 1):
        config = SearchConfig(dense_feedback_docs=n, dense_feedback_beta=1.0)
        s = _plain_store(tmp_path, docs, config)
        ranks[n] = [h.chunk.doc_id for h in s.search("a", "purring felines", k=3)]
    assert ranks[1] == ["a", "c", "d"]
    assert ranks[0].index("c") > ranks[0].index("d")  # without it the hashing noise wins


def test_dense_feedback_respects_filters(tmp_path: Path) -> None:
    docs = {"a": "purring felines whiskers tails", "c": "whiskers tails claws fur"}
    s = _plain_store(tmp_path, docs, SearchConfig(dense_feedback_docs=1, dense_feedback_beta=1.0))
    hits = s.search("a", "purring felines", k=3, filters={"doc_id": "c"})
    assert [h.chunk.doc_id for h in hits] == ["c"]


def test_keyword_feedback_adds_the_best_hits_own_terms(tmp_path: Path) -> None:
    # "c" shares no word with the query but two with the best hit "a", "e" one; the dense
    # side is weighted out so the keyword list alone decides
    docs = {
        "a": "purring felines whiskers tails",
        "c": "whiskers tails claws fur",
        "e": "tails of the city",
        "d": "tax forms deadline april",
    }
    scores = {}
    for n in (0, 5):
        config = SearchConfig(
            dense_weight=0.0,
            dense_feedback_beta=0.0,
            keyword_feedback_terms=n,
            keyword_feedback_gain=1.0,
        )
        s = _plain_store(tmp_path, docs, config)
        scores[n] = {h.chunk.doc_id: h.score for h in s.search("a", "purring felines", k=4)}
    assert max(scores[0], key=lambda d: scores[0][d]) == "a"
    assert scores[0].get("c", 0.0) == 0.0  # no query word: nothing without feedback
    assert scores[5]["c"] > scores[5].get("e", 0.0) >= scores[5].get("d", 0.0)


def test_sentence_units_are_title_prefixed_runs_of_sentences() -> None:
    chunk = Chunk(chunk_id="d#0", doc_id="d", title="Guide", text="One here. Two there. Three.")
    assert sentence_units(chunk) == ["Guide\nOne here.", "Guide\nTwo there.", "Guide\nThree."]
    assert sentence_units(chunk, window=2) == [
        "Guide\nOne here. Two there.",
        "Guide\nTwo there. Three.",
    ]
    assert sentence_units(chunk, contextual=False)[0] == "One here."
    assert sentence_units(chunk.model_copy(update={"text": "Only one sentence."})) == []


_SENTENCE_DOCS = {
    # "long" holds the query's words in one sentence among many unrelated ones; "mixed"
    # spreads half of them over a short text: its chunk vector is closer to the query,
    # but "long" holds the sentences that match
    "long": "Tax forms are due in April. Purring felines purr loudly. Rain fell over the "
    "harbour. Engines need oil changes. Bridges span rivers. Markets closed early.",
    "mixed": "Purring is common. Felines sleep.",
}
QUERY = "purring felines purr"


def _sentence_store(path: Path, window: int = 2, mix: float = 0.25) -> EmbeddedStore:
    config = SearchConfig(mode="dense", sentence_window=window, sentence_chunk_mix=mix)
    return EmbeddedStore(path, HashingEmbedder(), config=config)


def _sentence_chunks(docs: dict[str, str]) -> list[Chunk]:
    return [Chunk(chunk_id=f"{d}#0", doc_id=d, title="", text=t) for d, t in docs.items()]


@pytest.mark.parametrize("window", [1, 2])
def test_sentence_windows_find_the_one_matching_sentence(tmp_path: Path, window: int) -> None:
    chunks = _sentence_chunks(_SENTENCE_DOCS)
    plain = _sentence_store(tmp_path / "plain.sqlite3", window=0)
    plain.upsert("a", chunks)
    assert plain.search("a", QUERY, k=2)[0].chunk.doc_id == "mixed"
    s = _sentence_store(tmp_path / "s.sqlite3", window=window, mix=0.0)
    s.upsert("a", chunks)
    hits = s.search("a", QUERY, k=2)
    assert [h.chunk.doc_id for h in hits] == ["long", "mixed"]
    # with mix 0 the score is the best window's cosine: the query against that window
    best = (
        HashingEmbedder().embed([QUERY])[0]
        @ HashingEmbedder().embed(sentence_units(chunks[0], window=window)).T
    )
    assert hits[0].score == pytest.approx(float(best.max()), abs=1e-5)
    mixed = _sentence_store(tmp_path / "s.sqlite3", window=window, mix=1.0)
    chunk_cos = float(
        HashingEmbedder().embed([QUERY])[0] @ HashingEmbedder().embed([context_text(chunks[0])])[0]
    )
    scores = {h.chunk.doc_id: h.score for h in mixed.search("a", QUERY, k=2)}
    assert scores["long"] == pytest.approx(float(best.max()) + chunk_cos, abs=1e-5)


def _sentence_rows(path: Path) -> list[tuple[str, str]]:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("SELECT tenant, chunk_id FROM sentence_vectors").fetchall())
    finally:
        conn.close()


def test_sentence_vectors_follow_rewrites_deletes_and_tenants(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    s = _sentence_store(path, mix=0.0)
    chunks = _sentence_chunks(_SENTENCE_DOCS)
    s.upsert("a", chunks)
    s.upsert("b", chunks[:1])
    s.upsert("a", chunks)  # idempotent
    assert _sentence_rows(path) == [("a", "long#0"), ("b", "long#0")]  # "mixed": 2 sentences
    # a re-ingested chunk down to two sentences keeps no stale window vectors
    s.replace_documents("a", [chunks[0].model_copy(update={"text": "Tax forms. Rain."})])
    assert _sentence_rows(path) == [("b", "long#0")]
    assert s.search("a", QUERY, k=1)[0].chunk.doc_id == "mixed"
    s.upsert("a", chunks[:1])
    s.delete_documents("a", ["long"])
    assert _sentence_rows(path) == [("b", "long#0")]
    assert [h.chunk.doc_id for h in s.search("b", QUERY, k=5)] == ["long"]
    assert [h.chunk.doc_id for h in s.search("a", QUERY, k=5)] == ["mixed"]


def test_a_store_without_sentence_vectors_scores_chunks_by_their_vector(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    _sentence_store(path, window=0).upsert("a", _sentence_chunks(_SENTENCE_DOCS))
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE sentence_vectors")  # a store written before the table existed
    conn.commit()
    conn.close()
    want = [
        (h.chunk.doc_id, h.score) for h in _sentence_store(path, window=0).search("a", QUERY, k=2)
    ]
    assert want[0][0] == "mixed"
    old = _sentence_store(path, window=2, mix=0.25)
    assert [(h.chunk.doc_id, h.score) for h in old.search("a", QUERY, k=2)] == want
    # a chunk written with windows next to old ones: each old chunk vector is its one window
    old.upsert("a", _sentence_chunks({"new": "Cats purr. Dogs bark. Birds sing."}))
    assert _sentence_rows(path) == [("a", "new#0")]  # the table is back
    scores = {h.chunk.doc_id: h.score for h in old.search("a", QUERY, k=3)}
    assert [scores[d] for d, _ in want] == pytest.approx([1.25 * s for _, s in want])


SETTINGS_TEXT = (
    "Vitamin D is made in the skin. It helps bones take up calcium. Too little causes rickets."
)


@pytest.mark.parametrize(("window", "rows"), [(2, [("t", "d#0")]), (0, [])])
def test_sentence_window_setting_decides_what_ingest_embeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int, rows: list[tuple[str, str]]
) -> None:
    monkeypatch.setenv("RAGRELAY_SENTENCE_WINDOW", str(window))
    store = open_store(Settings(data_dir=tmp_path), load_worker_settings(), HashingEmbedder())
    assert isinstance(store, EmbeddedStore)
    assert store.config.sentence_window == window
    store.upsert("t", [Chunk(chunk_id="d#0", doc_id="d", title="Vitamin D", text=SETTINGS_TEXT)])
    assert _sentence_rows(store.path) == rows
    assert [h.chunk.chunk_id for h in store.search("t", "rickets calcium", k=1)] == ["d#0"]


def test_a_negative_sentence_window_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGRELAY_SENTENCE_WINDOW", "-1")
    with pytest.raises(ValidationError, match="sentence_window"):
        StoreSettings()


def test_dense_feedback_rescores_candidate_windows_exactly(tmp_path: Path) -> None:
    """The feedback step re-reads the windows of its candidate chunks only: their scores
    equal the every-window computation, and only candidates (within the filter) score."""
    from workers.store.embedded import _dense_scores

    topics = [
        "Cats purr softly",
        "Dogs bark loudly",
        "Vaccines train immunity",
        "Rivers flood valleys",
        "Stars burn hydrogen",
        "Bees make honey",
    ]
    docs = {
        f"d{i}": " ".join(f"{topics[(i + j) % 6]} in text {i}, part {j}." for j in range(i % 4 + 1))
        for i in range(40)
    }
    chunks = _sentence_chunks(docs)
    exact = EmbeddedStore(
        tmp_path / "s.sqlite3", HashingEmbedder(), config=SearchConfig(dense_feedback_candidates=0)
    )
    exact.upsert("a", chunks)
    few = EmbeddedStore(
        tmp_path / "s.sqlite3", HashingEmbedder(), config=SearchConfig(dense_feedback_candidates=7)
    )
    index = few._index("a")
    assert index is not None and len(index.parts) > len(index.rows)  # windows exist
    first = _dense_scores(index, HashingEmbedder().embed(["cats purr near bees"])[0])
    feedback = index.vectors[[3]]
    want = exact._moved_dense(index, first, feedback, depth=5, allowed=None)
    got = few._moved_dense(index, first, feedback, depth=5, allowed=None)
    scored = np.isfinite(got)
    assert scored.sum() == 7
    np.testing.assert_allclose(got[scored], want[scored], atol=1e-6)
    allowed = np.array([r[1] != "d0" and int(r[1][1:]) % 2 == 0 for r in index.rows])
    filtered = few._moved_dense(index, first, feedback, depth=5, allowed=allowed)
    assert np.isfinite(filtered).sum() == 7 and not (np.isfinite(filtered) & ~allowed).any()
    np.testing.assert_allclose(
        filtered[np.isfinite(filtered)], want[np.isfinite(filtered)], atol=1e-6
    )

"""Store-side fusion functions and BM25 scoring against hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest

from workers.store.bm25 import BM25Index, PairIndex, query_weights
from workers.store.fusion import normalized_fusion, ranked, rrf, zscore_fusion
from workers.store.prf import chunk_feedback


def test_rrf_sums_reciprocal_ranks() -> None:
    fused = rrf([["a", "b"], ["b", "c"]], k=60)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert ranked(fused) == ["b", "a", "c"]


def test_normalized_fusion_min_max_per_list() -> None:
    fused = normalized_fusion([{"a": 10.0, "b": 5.0, "c": 0.0}, {"b": 0.9, "c": 0.1}])
    assert fused == pytest.approx({"a": 1.0, "b": 0.5 + 1.0, "c": 0.0})


def test_zscore_fusion_rewards_standing_out() -> None:
    fused = zscore_fusion([{"a": 3.0, "b": 1.0, "c": 1.0}, {"b": 2.0, "c": 1.0}])
    assert ranked(fused)[0] in {"a", "b"}
    assert fused["c"] < fused["b"]


def test_bm25_prefers_rarer_terms_and_shorter_docs() -> None:
    index = BM25Index([["cat", "dog"], ["cat"], ["dog", "dog", "bird", "fish"]], k1=1.2, b=0.75)
    scores = index.score({"cat": 1.0})
    assert scores[1] > scores[0] > 0 and scores[2] == 0
    n, df = 3, 2
    assert index.idf_of("cat") == pytest.approx(math.log(1 + (n - df + 0.5) / (df + 0.5)), rel=1e-6)
    assert index.score({"unknown": 1.0}).sum() == 0


def _pairs(terms: list[str]) -> list[str]:
    return [f"{a}_{b}" for a, b in itertools.pairwise(terms)]


def test_pair_index_scores_as_bm25_over_pair_strings() -> None:
    docs = [
        ["heart", "attack", "risk", "heart", "attack"],
        ["attack", "heart"],
        ["risk", "heart", "attack", "rate", "rise"],
        ["heart"],
        [],
    ]
    index = PairIndex(docs, BM25Index(docs, k1=1.2, b=0.75), k1=1.2, b=0.75)
    reference = BM25Index([_pairs(d) for d in docs], k1=1.2, b=0.75)
    for query in (
        ["heart", "attack"],
        ["heart", "attack", "risk"],
        ["attack", "heart", "attack"],
        ["heart", "unknown", "attack"],
        ["rate"],
    ):
        expected = reference.score(query_weights(_pairs(query)))
        assert index.score(query) == pytest.approx(expected, abs=1e-6)
    assert index.score(["heart", "attack"])[0] > index.score(["heart", "attack"])[2] > 0
    assert not index.score(["heart", "attack"])[1]  # the reverse order is another pair


def test_chunk_feedback_adds_the_heaviest_new_terms_within_the_gain() -> None:
    index = BM25Index([["cell", "tumor", "tumor", "growth"], ["cell", "cycle"], ["cell"]])
    query = {"cell": 1.0, "growth": 2.0}
    out = chunk_feedback(query, ["cell", "tumor", "tumor", "growth"], index, n_terms=5, gain=0.1)
    assert set(out) == {"cell", "growth", "tumor"}  # only the chunk's new term joins
    assert out["cell"] == query["cell"] and out["growth"] == query["growth"]
    assert out["tumor"] == pytest.approx(0.1 * 3.0)  # all of the gain: one new term
    two = chunk_feedback(
        {"growth": 1.0}, ["cell", "tumor", "tumor", "cycle"], index, n_terms=2, gain=0.5
    )
    assert set(two) == {"growth", "tumor", "cycle"}  # tf x idf: "cell" (in every chunk) loses
    assert two["tumor"] > two["cycle"] and two["tumor"] + two["cycle"] == pytest.approx(0.5)
    assert chunk_feedback(query, ["cell"], index) == query  # nothing new: unchanged


@pytest.mark.parametrize("docs", [[], [["heart"]], [[], ["risk"]]])
def test_pair_index_without_any_pair_scores_nothing(docs: list[list[str]]) -> None:
    """A tenant whose last document was deleted (or whose chunks are single terms) has no
    pairs: the index builds and scores zeros instead of raising."""
    index = PairIndex(docs, BM25Index(docs, k1=1.2, b=0.75), k1=1.2, b=0.75)
    assert list(index.score(["heart", "attack"])) == [0.0] * len(docs)

"""Query rewrites: original first, useful variants only, no repeats on a revise loop."""

from __future__ import annotations

from schemas import Chunk
from workers.text.rewrite import decompose, expand_with_feedback, keyword_query, rewrite_query


def test_original_query_comes_first() -> None:
    assert rewrite_query("what is the capital of France?")[0] == "what is the capital of France?"


def test_wordy_question_gets_a_keyword_rewrite() -> None:
    out = rewrite_query("what is the capital of France?")
    assert "capital france" in out


def test_terse_query_is_not_rewritten() -> None:
    assert rewrite_query("mitochondria ATP synthesis") == ["mitochondria ATP synthesis"]


def test_multi_part_question_is_decomposed() -> None:
    parts = decompose("Who founded the Red Cross and when was it founded?")
    assert parts == ["Who founded the Red Cross?", "when was it founded?"]
    assert decompose("cats and dogs") == []


def test_feedback_docs_expand_with_their_shared_terms() -> None:
    docs = [
        Chunk(chunk_id="a#0", doc_id="a", text="Insulin resistance drives type 2 diabetes."),
        Chunk(chunk_id="b#0", doc_id="b", text="Diabetes and insulin signalling in muscle."),
    ]
    expanded = expand_with_feedback("blood sugar control", docs, terms=2)
    assert expanded.startswith("blood sugar control ")
    assert set(expanded.split()[3:]) == {"insulin", "diabetes"}


def test_revise_loop_skips_rewrites_already_tried() -> None:
    first = rewrite_query("what is the capital of France?")
    again = rewrite_query(
        "what is the capital of France?", feedback="mention Paris population", previous=first
    )
    assert not set(again) & set(first)
    assert any("paris" in r for r in again)


def test_keyword_query_drops_stop_words_and_repeats() -> None:
    assert keyword_query("The cat and the cat") == "cat"

"""Chunking: overlap, stable ids, titles and section paths kept."""

from __future__ import annotations

from schemas import Document
from workers.store.chunking import chunk_document, sections


def test_long_text_is_split_with_overlap_and_stable_ids() -> None:
    doc = Document(doc_id="d", title="T", text=" ".join(f"w{i}" for i in range(500)))
    chunks = chunk_document(doc, max_words=200, overlap=50)
    assert [c.chunk_id for c in chunks] == ["d#0", "d#1", "d#2"]
    assert all(c.doc_id == "d" and c.title == "T" for c in chunks)
    first, second = chunks[0].text.split(), chunks[1].text.split()
    assert first[-50:] == second[:50]
    assert chunks[-1].text.split()[-1] == "w499"
    assert chunk_document(doc, max_words=200, overlap=50) == chunks  # deterministic


def test_empty_document_has_no_chunks() -> None:
    assert chunk_document(Document(doc_id="e", text="   ")) == []


def test_markdown_sections_give_section_paths() -> None:
    text = "intro line\n# Install\nget it\n## Linux\napt install x\n# Use\nrun it\n"
    assert sections(text) == [
        ("", "intro line"),
        ("Install", "get it"),
        ("Install > Linux", "apt install x"),
        ("Use", "run it"),
    ]
    chunks = chunk_document(Document(doc_id="m", title="Guide", text=text, metadata={"k": 1}))
    assert [c.metadata.get("section") for c in chunks] == [
        None,
        "Install",
        "Install > Linux",
        "Use",
    ]
    assert all(c.metadata["k"] == 1 for c in chunks)


def test_hash_lines_inside_code_fences_are_not_headings() -> None:
    text = "# Real\n```\n# comment\n```\n"
    assert [p for p, _ in sections(text)] == ["Real"]

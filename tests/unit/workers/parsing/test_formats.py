"""Each format parses into parts with their page/section; each bad input is refused with
a reason (and the sandbox survives a parser that crashes or hangs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import Document
from tests.support.docfiles import (
    HTML_PAGE,
    make_blank_pdf,
    make_docx,
    make_pdf,
    make_scanned_pdf,
    make_text_image,
    make_zip_bomb,
)
from workers.parsing import ParseLimits, UnreadableFile, parse_file, parse_isolated, to_document
from workers.store.chunking import chunk_document

LIMITS = ParseLimits(timeout_s=30)


def test_pdf_parts_carry_page_numbers_and_outline_sections(tmp_path: Path) -> None:
    pdf = make_pdf(
        tmp_path / "manual.pdf",
        ["Intro page about nothing much.", "The torque of bolt K7 is 42 newton metres."],
        title="Pump Manual",
        outline={0: "Introduction", 1: "Maintenance"},
    )
    parsed = parse_file(pdf, LIMITS)
    assert parsed.kind == "pdf" and parsed.pages == 2 and parsed.title == "Pump Manual"
    assert [(p.page, p.section) for p in parsed.parts] == [(1, "Introduction"), (2, "Maintenance")]
    assert "bolt K7" in parsed.parts[1].text
    chunks = chunk_document(to_document(parsed, doc_id="manual.pdf"))
    assert [(c.metadata["page"], c.metadata["section"]) for c in chunks] == [
        (1, "Introduction"),
        (2, "Maintenance"),
    ]


def test_docx_headings_become_sections_and_tables_rows_with_header(tmp_path: Path) -> None:
    path = make_docx(
        tmp_path / "h.docx",
        title="Handbook",
        sections=[("Onboarding", "Badges are issued on day one."), ("Leave", "Leave is 30 days.")],
        table=[["Name", "Role"], ["Ada", "engineer"]],
    )
    parsed = parse_file(path, LIMITS)
    assert parsed.title == "Handbook"
    by_section = {p.section: p.text for p in parsed.parts}
    assert by_section["Handbook > Onboarding"] == "Badges are issued on day one."
    assert "Name: Ada; Role: engineer" in by_section["Handbook > Leave"]


def test_html_drops_scripts_navigation_and_footers(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(HTML_PAGE)
    parsed = parse_file(path, LIMITS)
    text = parsed.text
    for junk in ("SCRIPTTEXT", "NAVTEXT", "HEADERTEXT", "FOOTERTEXT", "color:red"):
        assert junk not in text
    sections = {p.section: p.text for p in parsed.parts}
    assert "seventeen quail eggs" in sections["Falcon Handbook > Feeding"]
    assert "Bird: Zorbath; Weight: 900 g" in sections["Falcon Handbook > Housing"]
    assert parsed.title == "Falcon Handbook"


def test_markdown_headings_and_plain_text_and_eml(tmp_path: Path) -> None:
    md = tmp_path / "a.md"
    md.write_text("# Guide\nintro\n## Setup\nrun make\n")
    assert [(p.section, p.text) for p in parse_file(md, LIMITS).parts] == [
        ("Guide", "intro"),
        ("Guide > Setup", "run make"),
    ]
    txt = tmp_path / "b.txt"
    txt.write_text("just words\n")
    assert parse_file(txt, LIMITS).text == "just words"
    eml = tmp_path / "c.eml"
    eml.write_text("From: a@x.org\nTo: b@x.org\nSubject: Gate code\n\nThe gate code is 4711.\n")
    parsed = parse_file(eml, LIMITS)
    assert parsed.title == "Gate code" and "4711" in parsed.text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n", "no text"),
        (
            "latin.txt",
            "caf\xe9 cr\xe8me".encode("latin-1"),
            "not UTF-8 text (byte 0xe9 at offset 3)",
        ),
        ("lies.pdf", b"just some text pretending", "named .pdf but the bytes are text"),
        ("lies.docx", b"%PDF-1.4 not really", "named .docx but the bytes are PDF"),
        ("zip.pdf", b"PK\x03\x04rest", "the bytes are a ZIP archive"),
        ("corrupt.pdf", b"%PDF-1.4\ngarbage garbage\n%%EOF", "corrupt PDF"),
        ("image.txt", b"\x89PNG\r\n\x1a\n....", "named .txt but the bytes are IMAGE"),
        ("scan.png", b"\x89PNG\r\n\x1a\n....", "no text layer (a scan or an image); enable OCR"),
        ("data.xlsx", b"hello", "unsupported file type '.xlsx'"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UnreadableFile) as err:
        parse_file(path, LIMITS)
    assert reason in err.value.reason


def test_encrypted_scanned_oversized_and_bomb_files_are_refused(tmp_path: Path) -> None:
    secret = make_pdf(tmp_path / "s.pdf", ["classified"], password="hunter2")
    with pytest.raises(UnreadableFile, match="encrypted PDF"):
        parse_file(secret, LIMITS)
    with pytest.raises(UnreadableFile, match="no text layer"):
        parse_file(make_blank_pdf(tmp_path / "scan.pdf"), LIMITS)
    with pytest.raises(UnreadableFile, match="OCR found no text"):
        parse_file(make_blank_pdf(tmp_path / "scan.pdf"), ParseLimits(ocr=True))
    long = make_pdf(tmp_path / "long.pdf", ["page"] * 5)
    with pytest.raises(UnreadableFile, match="5 pages; the limit is 3 pages"):
        parse_file(long, ParseLimits(max_pages=3))
    with pytest.raises(UnreadableFile, match="the limit is 100 bytes"):
        parse_file(long, ParseLimits(max_bytes=100))
    with pytest.raises(UnreadableFile, match="decompression bomb refused"):
        parse_file(make_zip_bomb(tmp_path / "bomb.docx"), LIMITS)


def test_isolated_parse_returns_the_same_parts_and_the_same_refusals(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "m.pdf", ["alpha beta", "gamma delta"], outline={1: "Two"})
    assert parse_isolated(pdf, LIMITS).parts == parse_file(pdf, LIMITS).parts
    bad = tmp_path / "x.pdf"
    bad.write_bytes(b"nope")
    with pytest.raises(UnreadableFile, match=r"named \.pdf but the bytes are text"):
        parse_isolated(bad, LIMITS)


def test_a_hanging_or_crashing_parser_costs_only_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the child runs ``python -m workers.parsing.sandbox``; point it at a stand-in that hangs
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(60)\n")
    crash = tmp_path / "crash.py"
    crash.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    import workers.parsing.sandbox as sandbox

    real_run = sandbox.subprocess.run

    def run_script(script: Path):  # type: ignore[no-untyped-def]
        def run(args, **kw):  # type: ignore[no-untyped-def]
            return real_run([args[0], str(script)], **kw)

        return run

    path = tmp_path / "a.txt"
    path.write_text("fine")
    monkeypatch.setattr(sandbox.subprocess, "run", run_script(hang))
    with pytest.raises(UnreadableFile, match="longer than 1 s"):
        parse_isolated(path, ParseLimits(timeout_s=1))
    monkeypatch.setattr(sandbox.subprocess, "run", run_script(crash))
    with pytest.raises(UnreadableFile, match="crashed on this file \\(killed by signal 11\\)"):
        parse_isolated(path, LIMITS)


def test_documents_without_parts_still_validate_and_chunk_as_before() -> None:
    old = Document.model_validate({"doc_id": "d", "text": "# A\nx y z"})
    assert old.parts is None
    assert chunk_document(old)[0].metadata == {"section": "A"}


def test_ocr_reads_a_scanned_pdf_page_and_an_image(tmp_path: Path) -> None:
    lines = ["The boiler pressure limit is 42 bar.", "Inspect the valve every Monday."]
    image = make_text_image(tmp_path / "note.png", lines)
    scan = make_scanned_pdf(tmp_path / "scan.pdf", [image])
    with pytest.raises(UnreadableFile, match="enable OCR"):
        parse_file(scan, LIMITS)
    ocr = ParseLimits(ocr=True, timeout_s=60)
    parsed = parse_isolated(scan, ocr)
    assert parsed.parts[0].page == 1
    assert "boiler pressure limit is 42 bar" in parsed.text
    assert "valve every Monday" in parse_file(image, ocr).text


def test_html_keeps_utf8_punctuation_and_honours_a_declared_charset(tmp_path: Path) -> None:
    page = tmp_path / "dash.html"
    page.write_bytes(
        "<html><body><p>1973\u20131974 \u2018oil\u2019 communiqu\u00e9</p></body></html>".encode()
    )
    assert parse_file(page, LIMITS).text == "1973\u20131974 \u2018oil\u2019 communiqu\u00e9"
    latin = tmp_path / "latin.html"
    latin.write_bytes(
        b'<html><head><meta charset="iso-8859-1"></head><body><p>caf\xe9 cr\xe8me</p></body></html>'
    )
    assert parse_file(latin, LIMITS).text == "caf\u00e9 cr\u00e8me"
    undeclared = tmp_path / "bad.html"
    undeclared.write_bytes(b"<html><body><p>caf\xe9</p></body></html>")
    with pytest.raises(UnreadableFile, match="not UTF-8 text"):
        parse_file(undeclared, LIMITS)

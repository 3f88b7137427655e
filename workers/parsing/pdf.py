"""PDF text layer, page by page, with pypdfium2 (chosen by measurement over pypdf:
docs/benchmarks-ingest.md). A PDF's outline (bookmarks), when it has one, names the
section of each page. A page without a text layer is a scan: with OCR on, Tesseract reads
it; without, a PDF with no text at all is refused with the reason."""

from __future__ import annotations

from pathlib import Path

from workers.parsing.ocr import NEEDS_OCR, ocr_page
from workers.parsing.types import Parsed, ParseLimits, UnreadableFile


def parse_pdf(path: Path, limits: ParseLimits) -> Parsed:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        reason = str(exc).lower()
        if "password" in reason:
            raise UnreadableFile("encrypted PDF: a password is needed to read it") from exc
        raise UnreadableFile(f"corrupt PDF: {exc}") from exc
    try:
        n = len(pdf)
        if n > limits.max_pages:
            raise UnreadableFile(f"{n} pages; the limit is {limits.max_pages} pages per file")
        sections = _outline(pdf, n)
        meta_title = (pdf.get_metadata_dict().get("Title") or "").strip()
        out = Parsed(kind="pdf", title=meta_title, pages=n)
        chars = 0
        for i in range(n):
            page = pdf[i]
            try:
                textpage = page.get_textpage()
                text = textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
                textpage.close()
                if limits.ocr and not text.strip():
                    text = ocr_page(page, limits)
            finally:
                page.close()
            chars += len(text)
            if chars > limits.max_chars:
                raise UnreadableFile(f"more than {limits.max_chars} characters of text")
            out.add(text, page=i + 1, section=sections.get(i, ""))
    except pdfium.PdfiumError as exc:
        raise UnreadableFile(f"corrupt PDF: {exc}") from exc
    finally:
        pdf.close()
    if not out.parts:
        raise UnreadableFile("OCR found no text" if limits.ocr else NEEDS_OCR)
    return out


def _outline(pdf: object, pages: int) -> dict[int, str]:
    """Page index -> the title of the last outline entry starting at or before it."""
    starts: list[tuple[int, str]] = []
    try:
        for item in pdf.get_toc(max_depth=3):  # type: ignore[attr-defined]
            dest = item.get_dest()
            index = dest.get_index() if dest is not None else None
            if index is not None and item.level == 0:
                starts.append((int(index), str(item.get_title()).strip()))
    except Exception:  # a broken outline costs the section names, never the text
        return {}
    starts.sort()
    found: dict[int, str] = {}
    for page in range(pages):
        current = [title for start, title in starts if start <= page]
        if current:
            found[page] = current[-1]
    return found

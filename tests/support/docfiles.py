"""Small real documents written by the tests themselves (no binary fixtures in git):
PDFs with a text layer and an outline (reportlab), DOCX with headings and a table
(python-docx), HTML with boilerplate around the content."""

from __future__ import annotations

import zipfile
from pathlib import Path


def make_pdf(
    path: Path,
    pages: list[str],
    *,
    title: str = "",
    outline: dict[int, str] | None = None,
    password: str | None = None,
) -> Path:
    """One page per string (lines wrapped at ~90 characters); ``outline``: page -> title."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.pdfencrypt import StandardEncryption
    from reportlab.pdfgen import canvas

    encrypt = StandardEncryption(password, canPrint=0) if password else None
    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt)
    c.setTitle(title)
    for i, text in enumerate(pages):
        if outline and i in outline:
            key = f"p{i}"
            c.bookmarkPage(key)
            c.addOutlineEntry(outline[i], key, level=0)
        y = 800
        for para in text.split("\n"):
            words, line = para.split(), ""
            for w in words:
                if len(line) + len(w) > 90:
                    c.drawString(40, y, line)
                    y -= 14
                    line = ""
                line = f"{line} {w}".strip()
            if line:
                c.drawString(40, y, line)
                y -= 14
        c.showPage()
    c.save()
    return path


def make_blank_pdf(path: Path) -> Path:
    """A PDF with a page and no text at all (what a scan without OCR looks like)."""
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    c.rect(100, 100, 200, 200, fill=1)
    c.showPage()
    c.save()
    return path


def make_text_image(path: Path, lines: list[str]) -> Path:
    """A PNG of black text on white, large enough for Tesseract (Pillow's bundled font)."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("L", (1400, 100 + 100 * len(lines)), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=48)
    for i, line in enumerate(lines):
        draw.text((40, 50 + 100 * i), line, font=font, fill=0)
    img.save(path)
    return path


def make_scanned_pdf(path: Path, images: list[Path]) -> Path:
    """A PDF whose pages are only images (no text layer), as a scanner writes them."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for image in images:
        c.drawImage(str(image), 20, 500, width=560, height=200)
        c.showPage()
    c.save()
    return path


def make_docx(
    path: Path, *, title: str, sections: list[tuple[str, str]], table: list[list[str]] | None = None
) -> Path:
    import docx

    d = docx.Document()
    d.core_properties.title = title
    d.add_heading(title, level=1)
    for heading, body in sections:
        d.add_heading(heading, level=2)
        d.add_paragraph(body)
    if table:
        t = d.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                t.cell(r, c).text = value
    d.save(str(path))
    return path


def make_zip_bomb(path: Path, *, size: int = 64 * 1024 * 1024) -> Path:
    """A .docx-named ZIP whose one member inflates to ``size`` zero bytes (~64 KB packed)."""
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("word/document.xml", "w", force_zip64=True) as fh,
    ):
        block = b"\0" * (1024 * 1024)
        for _ in range(size // len(block)):
            fh.write(block)
    return path


HTML_PAGE = """<!doctype html><html><head><title>Falcon Handbook</title>
<style>.x{color:red}</style><script>var secret = "SCRIPTTEXT";</script></head>
<body><nav><a href="/">Home</a> NAVTEXT menu</nav>
<header>HEADERTEXT site banner</header>
<main><h1>Falcon Handbook</h1>
<h2>Feeding</h2><p>The falcon named Zorbath eats exactly seventeen quail eggs every Tuesday.</p>
<h2>Housing</h2><p>Falcons sleep in the north tower under a copper roof.</p>
<table><tr><th>Bird</th><th>Weight</th></tr><tr><td>Zorbath</td><td>900 g</td></tr></table>
</main><footer>FOOTERTEXT copyright</footer></body></html>"""

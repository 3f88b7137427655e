"""Compare parsing libraries on the shared SQuAD articles rendered to PDF, DOCX and HTML.

    .venv/bin/python scripts/bench_parsers.py [--articles 40] [--out /tmp/parsers]

PDF: pypdfium2 vs pypdf (text layer). HTML: our lxml walker vs trafilatura. DOCX:
python-docx. Fidelity = share of the source's words found in the extracted text (bag of
words, lower-cased) and, for HTML, whether boilerplate words leaked in. Speed = pages/s or
files/s of the raw library call, and of our ``parse_file`` (what ingest runs) over it.
Results are written to docs/benchmarks-ingest.md by hand.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import time
from pathlib import Path

WORD = re.compile(r"[a-z0-9]+")
BOILER = ("NAVWORD", "FOOTWORD", "SCRIPTWORD")


def articles(n: int) -> list[tuple[str, list[str]]]:
    path = Path(__file__).resolve().parents[1] / "shared/data/squad/corpus.jsonl.gz"
    if not path.exists():
        path = Path("/work/shared/data/squad/corpus.jsonl.gz")
    by: dict[str, list[str]] = collections.defaultdict(list)
    with gzip.open(path, "rt") as fh:
        for line in fh:
            row = json.loads(line)
            by[row["title"]].append(row["text"])
    return list(by.items())[:n]


def recall(source: str, got: str) -> float:
    want = collections.Counter(WORD.findall(source.lower()))
    have = collections.Counter(WORD.findall(got.lower()))
    return sum((want & have).values()) / max(1, sum(want.values()))


def render(out: Path, arts: list[tuple[str, list[str]]]) -> None:
    from xml.sax.saxutils import escape

    import docx
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    for i, (title, paras) in enumerate(arts):
        story = [Paragraph(escape(title), styles["Title"])]
        story += [Paragraph(escape(p), styles["BodyText"]) for p in paras]
        SimpleDocTemplate(str(out / f"{i}.pdf"), title=title).build(story)
        d = docx.Document()
        d.add_heading(title, 1)
        for p in paras:
            d.add_paragraph(p)
        d.save(str(out / f"{i}.docx"))
        body = "".join(f"<p>{escape(p)}</p>" for p in paras)
        (out / f"{i}.html").write_text(
            f"<!doctype html><html><head><title>{escape(title)}</title>"
            "<script>var x='SCRIPTWORD';</script></head><body>"
            "<nav><a href='/'>NAVWORD home</a> <a href='/a'>NAVWORD about</a></nav>"
            f"<main><article><h1>{escape(title)}</h1>{body}</article></main>"
            "<footer>FOOTWORD copyright 2024 FOOTWORD</footer></body></html>"
        )


def timed(fn, files):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    texts = [fn(f) for f in files]
    return texts, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=40)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ragrelay-parsers"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    arts = articles(args.articles)
    render(args.out, arts)
    sources = [t + " " + " ".join(ps) for t, ps in arts]

    import pypdf
    import pypdfium2 as pdfium
    import trafilatura

    from workers.parsing import ParseLimits, parse_file

    limits = ParseLimits()

    def pdfium_text(f: Path) -> str:
        pdf = pdfium.PdfDocument(str(f))
        text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        pdf.close()
        return text

    def pypdf_text(f: Path) -> str:
        return "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(str(f)).pages)

    def ours(f: Path) -> str:
        return parse_file(f, limits).text

    pdfs = [args.out / f"{i}.pdf" for i in range(len(arts))]
    pages = sum(len(pdfium.PdfDocument(str(f))) for f in pdfs)
    rows = []
    for name, fn in (
        ("pypdfium2", pdfium_text),
        ("pypdf", pypdf_text),
        ("ragrelay parse_file (pypdfium2)", ours),
    ):
        texts, s = timed(fn, pdfs)
        fid = sum(recall(src, t) for src, t in zip(sources, texts, strict=True)) / len(texts)
        rows.append(("PDF", name, len(pdfs), pages, s, fid, 0))
    docxs = [args.out / f"{i}.docx" for i in range(len(arts))]
    texts, s = timed(ours, docxs)
    fid = sum(recall(src, t) for src, t in zip(sources, texts, strict=True)) / len(texts)
    rows.append(("DOCX", "python-docx (ragrelay parse_file)", len(docxs), 0, s, fid, 0))
    htmls = [args.out / f"{i}.html" for i in range(len(arts))]

    def traf(f: Path) -> str:
        return trafilatura.extract(f.read_text(), favor_recall=True) or ""

    for name, fn in (("trafilatura", traf), ("lxml walker (ragrelay parse_file)", ours)):
        texts, s = timed(fn, htmls)
        fid = sum(recall(src, t) for src, t in zip(sources, texts, strict=True)) / len(texts)
        leaks = sum(any(b in t for b in BOILER) for t in texts)
        rows.append(("HTML", name, len(htmls), 0, s, fid, leaks))
    print(
        "| format | library | files | pages | seconds | pages/s or files/s | word recall | boilerplate leaks |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for fmt, name, n, p, s, fid, leaks in rows:
        rate = f"{p / s:.0f} pages/s" if p else f"{n / s:.0f} files/s"
        print(
            f"| {fmt} | {name} | {n} | {p or '-'} | {s:.2f} | {rate} | {fid:.4f} | {leaks if fmt == 'HTML' else '-'} |"
        )


if __name__ == "__main__":
    main()

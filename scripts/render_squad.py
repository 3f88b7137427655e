"""Render each shared SQuAD paragraph to PDF, DOCX and HTML, parse it back with ragrelay's
parsers, and write one JSONL corpus per format (same ``_id`` as the source paragraph), so
``ragrelay eval qa`` measures what parsing costs retrieval and answers.

    .venv/bin/python scripts/render_squad.py --out /tmp/squad-formats
    .venv/bin/ragrelay eval qa --corpus /tmp/squad-formats/pdf.jsonl \
        --questions ../shared/data/squad/questions.jsonl --limit 300 --no-loop --json
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from xml.sax.saxutils import escape

from workers.parsing import ParseLimits, parse_file


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=Path("/work/shared/data/squad/corpus.jsonl.gz"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/squad-formats"))
    args = ap.parse_args()
    import docx
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    files = args.out / "files"
    files.mkdir(parents=True, exist_ok=True)
    with gzip.open(args.corpus, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    outs = {fmt: (args.out / f"{fmt}.jsonl").open("w") for fmt in ("pdf", "docx", "html")}
    limits = ParseLimits()
    for n, row in enumerate(rows):
        title, text = row["title"], row["text"]
        pdf = files / f"{n}.pdf"
        SimpleDocTemplate(str(pdf), title=title).build(
            [Paragraph(escape(title), styles["Title"]), Paragraph(escape(text), styles["BodyText"])]
        )
        d = docx.Document()
        d.add_heading(title, 1)
        d.add_paragraph(text)
        d.save(str(files / f"{n}.docx"))
        (files / f"{n}.html").write_text(
            f"<!doctype html><html><head><title>{escape(title)}</title></head><body>"
            "<nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
            f"<main><h1>{escape(title)}</h1><p>{escape(text)}</p></main>"
            "<footer>Copyright 2024 Example</footer></body></html>"
        )
        for fmt in outs:
            parsed = parse_file(files / f"{n}.{fmt}", limits)
            body = "\n\n".join(p.text for p in parsed.parts if p.text.strip() != title)
            outs[fmt].write(
                json.dumps({"_id": row["_id"], "title": parsed.title or title, "text": body}) + "\n"
            )
    for fh in outs.values():
        fh.close()


if __name__ == "__main__":
    main()

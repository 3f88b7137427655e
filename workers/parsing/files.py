"""``parse_file``: sniff the real format, enforce the per-file limits, run its parser.

Imports nothing of ragrelay outside this package (the isolated child runs it; see
``types.py``)."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from workers.parsing.sniff import sniff
from workers.parsing.types import Parsed, ParseLimits, UnreadableFile


def parse_file(path: Path, limits: ParseLimits, *, name: str | None = None) -> Parsed:
    """Parse ``path`` in this process (``name``: the file's name as its sender gave it)."""
    name = name or path.name
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8192)
    except OSError as exc:
        raise UnreadableFile(f"unreadable: {exc.strerror}") from exc
    if size > limits.max_bytes:
        raise UnreadableFile(f"{size} bytes; the limit is {limits.max_bytes} bytes per file")
    kind = sniff(name, head)
    if kind == "pdf":
        from workers.parsing.pdf import parse_pdf

        return parse_pdf(path, limits)
    if kind == "image":
        from workers.parsing.ocr import parse_image

        return parse_image(path, limits)
    if kind == "docx":
        from workers.parsing.office import parse_docx

        return parse_docx(path, limits)
    raw = path.read_bytes()
    if kind == "html":
        from workers.parsing.html import parse_html_bytes

        return parse_html_bytes(raw, limits, encoding=html_encoding(raw))
    from workers.parsing.text import parse_eml, parse_text

    if kind == "eml":
        return parse_eml(raw, limits)
    return parse_text(raw, limits, markdown=kind == "markdown")


_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def html_encoding(raw: bytes) -> str:
    """UTF-8 when the bytes are UTF-8; else the page's own ``<meta charset>``; else refused."""
    from workers.parsing.text import decode_utf8

    try:
        raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        declared = _CHARSET.search(raw[:8192])
        if declared is None:
            decode_utf8(raw)  # raises the "not UTF-8 text (byte … at offset …)" reason
        name = declared.group(1).decode("ascii") if declared else "utf-8"
        try:
            return codecs.lookup(name).name
        except LookupError as exc:
            raise UnreadableFile(f"the page declares an unknown charset {name!r}") from exc

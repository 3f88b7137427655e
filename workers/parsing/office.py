"""DOCX with python-docx: headings become the section path; tables are kept as rows, each
row with its header ("Name: Ada; Role: engineer"). The ZIP is checked before it is opened:
a decompression bomb (more uncompressed bytes than the per-file limit) is refused."""

from __future__ import annotations

import zipfile
from pathlib import Path

from workers.parsing.types import Parsed, ParseLimits, UnreadableFile

#: deflate rarely beats 100:1 on real documents; bombs reach 1000:1 and more
MAX_RATIO = 200


def check_zip(path: Path, limits: ParseLimits) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise UnreadableFile(f"corrupt DOCX (not a readable ZIP): {exc}") from exc
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > limits.max_bytes or total / packed > MAX_RATIO:
        raise UnreadableFile(
            f"decompression bomb refused: {total} bytes uncompressed from {packed} "
            f"(limits: {limits.max_bytes} bytes, ratio {MAX_RATIO}:1)"
        )


def parse_docx(path: Path, limits: ParseLimits) -> Parsed:
    check_zip(path, limits)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors, ...
        raise UnreadableFile(f"corrupt DOCX: {type(exc).__name__}: {exc}") from exc
    out = Parsed(kind="docx", title=(document.core_properties.title or "").strip())
    stack: list[tuple[int, str]] = []
    body: list[str] = []

    def flush() -> None:
        out.add("\n".join(body), section=" > ".join(t for _, t in stack))
        body.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            text = block.text.strip()
            level = _heading_level(block.style.name if block.style is not None else "")
            if level and text:
                flush()
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, text))
                if not out.title and level == 1:
                    out.title = text
            elif text:
                body.append(text)
        elif isinstance(block, Table):
            body.extend(_table_rows(block))
    flush()
    if not out.parts:
        raise UnreadableFile("no text in the DOCX")
    return out


def _heading_level(style: str | None) -> int:
    if not style:
        return 0
    if style == "Title":
        return 1
    if style.startswith("Heading "):
        tail = style.removeprefix("Heading ")
        return int(tail) if tail.isdigit() else 0
    return 0


def _table_rows(table: object) -> list[str]:
    rows = [[c.text.strip() for c in row.cells] for row in table.rows]  # type: ignore[attr-defined]
    if not rows:
        return []
    header, *rest = rows
    if not rest:
        return ["; ".join(c for c in header if c)]
    return [
        "; ".join(f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v)
        for row in rest
    ]

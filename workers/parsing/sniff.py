"""Which format a file really is: its first bytes decide, the name only breaks ties.

A file whose extension names one binary format while its bytes are another (a ``.pdf``
that is a ZIP, a ``.docx`` that is text) is refused with both named, never parsed as
whatever it claims to be.
"""

from __future__ import annotations

from pathlib import PurePath

from workers.parsing.types import UnreadableFile

KINDS = ("pdf", "docx", "html", "markdown", "text", "eml", "image")

_BY_SUFFIX = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".eml": "eml",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}
_BINARY = {"pdf", "docx", "image"}


def _magic(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "ole"  # legacy .doc/.xls
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"II*\x00", b"MM\x00*")):
        return "image"
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf")):
        return "archive"
    if b"\x00" in head[:1024]:
        return "binary"
    return None


def _looks_html(head: bytes) -> bool:
    lower = head[:2048].lstrip().lower()
    return lower.startswith((b"<!doctype html", b"<html")) or b"<body" in lower


def _looks_email(head: bytes) -> bool:
    first = head[:4096].split(b"\n\n", 1)[0].lower()
    return first.count(b":") >= 2 and (b"\nsubject:" in b"\n" + first or b"from:" in first)


def sniff(name: str, head: bytes) -> str:
    """The parser kind for a file called ``name`` starting with ``head`` (or refuse it)."""
    if not head:
        raise UnreadableFile("empty file")
    claimed = _BY_SUFFIX.get(PurePath(name).suffix.lower())
    magic = _magic(head)
    if magic == "pdf":
        kind = "pdf"
    elif magic == "zip":
        if claimed != "docx":
            raise UnreadableFile(
                f"the bytes are a ZIP archive, not {claimed or 'a supported format'}"
                " (only .docx ZIPs are read)"
            )
        kind = "docx"
    elif magic == "image":
        kind = "image"  # read by OCR when it is on (workers/parsing/ocr.py)
    elif magic in ("ole", "archive", "binary"):
        raise UnreadableFile(f"unsupported binary content ({magic}); send PDF, DOCX, HTML or text")
    elif claimed in _BINARY:
        suffix = PurePath(name).suffix.lower()
        raise UnreadableFile(f"named {suffix} but the bytes are text, not {claimed.upper()}")
    elif claimed in ("html", "markdown", "eml") or (claimed == "text" and not _looks_html(head)):
        kind = claimed
    elif _looks_html(head):
        kind = "html"
    elif _looks_email(head):
        kind = "eml"
    elif claimed is None and PurePath(name).suffix:
        raise UnreadableFile(
            f"unsupported file type {PurePath(name).suffix!r} "
            "(use .pdf, .docx, .html, .md, .txt or .eml)"
        )
    else:
        kind = "text"
    if claimed is not None and kind != claimed and {kind, claimed} & _BINARY:
        suffix = PurePath(name).suffix.lower()
        raise UnreadableFile(f"named {suffix} but the bytes are {kind.upper()}")
    return kind

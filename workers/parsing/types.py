"""What a parser returns (``Parsed``), the limits it runs under, and the refusal it raises.

``UnreadableFile`` is a per-file outcome, not a crash: the reason is shown to whoever sent
the file (``GET /v1/ingests/{id}``, ``ragrelay ingest``), and the other files proceed.

This module imports nothing of ragrelay's: the isolated parser child (``sandbox.py``) runs
it, and importing ``bus`` (Celery) or ``schemas`` (pydantic) there would cost ~1 s per
file. That is why ``UnreadableFile`` stands outside ``bus.errors``' hierarchy; it never
leaves the ingest path as an exception (callers turn it into a per-file outcome).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UnreadableFile(Exception):
    """A file that cannot (or must not) be parsed; ``reason`` says why, for its sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ParseLimits:
    """Caps per file: bytes read, PDF pages, characters of text kept, seconds of parsing."""

    max_bytes: int = 50 * 1024 * 1024
    max_pages: int = 2_000
    max_chars: int = 20_000_000
    timeout_s: float = 60.0
    memory_mb: int = 1_024  # address-space cap of the isolated parser process
    ocr: bool = False  # read scanned pages and images with Tesseract (workers/parsing/ocr.py)


@dataclass(frozen=True)
class Part:
    """A run of text with its place (``schemas.DocumentPart`` once it leaves the parser)."""

    text: str
    page: int | None = None
    section: str = ""


@dataclass
class Parsed:
    """A file's text as parts with their place (page, section), and a title if found."""

    kind: str
    title: str = ""
    parts: list[Part] = field(default_factory=list)
    pages: int = 0  # PDF pages read (0 for other formats)

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.parts)

    def add(self, text: str, *, page: int | None = None, section: str = "") -> None:
        text = text.strip()
        if text:
            self.parts.append(Part(text=text, page=page, section=section))

"""What a parser returns (``Parsed``), the limits it runs under, and the refusal it raises.

``UnreadableFile`` is a per-file outcome, not a crash: the reason is shown to whoever sent
the file (``GET /v1/ingests/{id}``, ``ragrelay ingest``), and the other files proceed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bus.errors import UsageError
from schemas import DocumentPart


class UnreadableFile(UsageError):
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


@dataclass
class Parsed:
    """A file's text as parts with their place (page, section), and a title if found."""

    kind: str
    title: str = ""
    parts: list[DocumentPart] = field(default_factory=list)
    pages: int = 0  # PDF pages read (0 for other formats)

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.parts)

    def add(self, text: str, *, page: int | None = None, section: str = "") -> None:
        text = text.strip()
        if text:
            self.parts.append(DocumentPart(text=text, page=page, section=section))

"""mbox files (plain or ``.gz``): raw messages, and one ``Document`` per message for ingest.

Streaming: the file is read line by line, never whole. Messages are split on ``From ``
lines that follow a blank line (or start the file); ``>From `` escapes (mboxo/mboxrd) are
undone one level.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, cast

from bus.errors import InvalidMessage, UsageError
from ragrelay.inbox.parse import parse_message
from schemas import Document

_ESCAPED_FROM = re.compile(rb"^>(>*From )")
MAX_DOC_CHARS = 50_000


def _open(path: Path) -> BinaryIO:
    try:
        if path.name.endswith(".gz"):
            return cast(BinaryIO, gzip.open(path, "rb"))
        return path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot open mbox {path}: {exc.strerror}") from exc


def iter_mbox_messages(path: Path) -> Iterator[bytes]:
    """Raw RFC 822 bytes of each message in an mbox (``From_`` line removed)."""
    with _open(path) as handle:
        current: list[bytes] = []
        previous_blank = True
        started = False
        try:
            for line in handle:
                if line.startswith(b"From ") and previous_blank:
                    if started and any(x.strip() for x in current):
                        yield b"".join(current)
                    current = []
                    started = True
                else:
                    current.append(_ESCAPED_FROM.sub(rb"\1", line))
                previous_blank = not line.strip()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise UsageError(f"cannot read mbox {path}: {exc}") from exc
        if started and any(x.strip() for x in current):
            yield b"".join(current)


def iter_mbox_documents(path: Path, problems: list[str] | None = None) -> Iterator[Document]:
    """One document per message: subject as title, the text with quotes and signatures
    stripped. Unparseable messages are skipped (their reasons appended to ``problems``)."""
    path = Path(path)
    seen: set[str] = set()
    for index, raw in enumerate(iter_mbox_messages(path)):
        try:
            parsed = parse_message(raw)
        except InvalidMessage as exc:
            if problems is not None:
                problems.append(f"{path}#{index}: {exc.reason}")
            continue
        text = parsed.body_clean.strip()
        if not text:
            if problems is not None:
                problems.append(f"{path}#{index}: empty body")
            continue
        doc_id = parsed.key
        if doc_id in seen:
            continue
        seen.add(doc_id)
        yield Document(
            doc_id=doc_id[:512],
            title=parsed.subject or "(no subject)",
            text=text[:MAX_DOC_CHARS],
            source="internal",
            metadata={
                "kind": "email",
                "mbox": path.name,
                "from": parsed.from_header,
                "date": parsed.date,
                "message_id": parsed.message_id or "",
                "in_reply_to": parsed.in_reply_to,
                "list_id": parsed.headers.get("list_id", ""),
            },
        )


__all__ = ["iter_mbox_documents", "iter_mbox_messages"]

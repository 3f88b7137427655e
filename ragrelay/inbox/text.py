"""Pure text helpers for mail bodies: HTML to text, quoted history and signature stripping.

No I/O. ``strip_for_analysis`` keeps what the sender wrote in *this* message; the full
body (history included) is kept elsewhere for the draft's quote.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "br",
        "tr",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "ul",
        "ol",
        "blockquote",
        "pre",
        "hr",
        "dd",
        "dt",
        "section",
        "article",
        "header",
        "footer",
        "center",
    ]
)
_SKIP_TAGS = frozenset({"script", "style", "head", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """Visible text of an HTML body, one block per line. Never raises on broken markup."""
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # html.parser is lenient, but a pathological input must not block
        text = re.sub(r"<[^>]*>", " ", markup)
        text = html.unescape(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


# --- quoted history and signatures -----------------------------------------------------

_QUOTE_LINE = re.compile(r"^\s*(?:>|\|>|[A-Za-z]{1,4}>)")
_ATTRIBUTION = re.compile(
    r"^\s*(?:on\s.{0,200}\bwrote\b|.{0,120}\b(?:wrote|writes|said|schrieb)\s*:\s*$|"
    r"quoting\s.{0,120}:\s*$|in (?:article|message)\s.{0,200}(?:wrote|writes)\s*:?\s*$)",
    re.IGNORECASE,
)
_HISTORY_START = re.compile(
    r"^\s*(?:-{2,}\s*(?:original message|forwarded message|begin forwarded message)\s*-{2,}"
    r"|-----\s*original message\s*-----|_{5,}\s*$|from:\s.+\s*$)",
    re.IGNORECASE,
)
_SIGNATURE_START = re.compile(r"^(?:-- ?|--|__|—)\s*$")
_LIST_FOOTER = re.compile(
    r"(?:mailing list|listinfo|unsubscribe|list-admin|yahoo! groups|sponsored by|"
    r"sourceforge|to unsubscribe)",
    re.IGNORECASE,
)
_FOOTER_LINE = re.compile(r"(?:/mailman/listinfo/|/lists/listinfo/|/listinfo\b)", re.I)


def _is_header_block(lines: list[str], index: int) -> bool:
    """An Outlook-style quoted header block ("From: ...", "Sent: ...") starts a history."""
    window = " ".join(lines[index : index + 5]).lower()
    return lines[index].lower().lstrip().startswith("from:") and (
        "sent:" in window or "to:" in window or "subject:" in window or "date:" in window
    )


def strip_for_analysis(body: str) -> str:
    """What the sender wrote now: quoted lines, attributions, forwarded history, signatures
    and mailing-list footers removed. Falls back to the whole body if nothing is left."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _SIGNATURE_START.match(line):
            break
        if _HISTORY_START.match(line) and (
            not stripped.lower().startswith("from:") or _is_header_block(lines, index)
        ):
            if stripped.startswith("_") and not _LIST_FOOTER.search(
                " ".join(lines[index + 1 : index + 6])
            ):
                continue  # a decorative rule, not a footer
            break
        if _QUOTE_LINE.match(line):
            continue
        if _ATTRIBUTION.match(line) and _next_is_quote(lines, index):
            continue
        kept.append(line.rstrip())
    while kept and (not kept[-1].strip() or _FOOTER_LINE.search(kept[-1])):
        kept.pop()
    text = _MANY_NEWLINES.sub("\n\n", "\n".join(kept)).strip()
    return text or body.strip()


def _next_is_quote(lines: list[str], index: int) -> bool:
    for line in lines[index + 1 : index + 4]:
        if line.strip():
            return bool(_QUOTE_LINE.match(line))
    return True


def quote_for_reply(body: str, *, max_lines: int = 400) -> str:
    """The original body quoted with ``> `` (history included), as mail clients do."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").rstrip().split("\n")
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], "[...]"]
    return "\n".join(">" if not line.strip() else "> " + line.rstrip() for line in lines)


__all__ = ["html_to_text", "quote_for_reply", "strip_for_analysis"]

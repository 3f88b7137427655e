"""Raw RFC 822 bytes → ``ParsedEmail``, with the standard library's ``email`` (policy default).

Robust by design: broken charsets fall back (declared → UTF-8 → cp1252 → Latin-1), broken
headers fall back to their raw value, HTML-only mail is converted to text, attachments are
listed, not inlined. A message that cannot be read at all raises ``InvalidMessage`` with the
reason; the caller records it and moves on.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from bus.errors import InvalidMessage
from ragrelay.inbox.text import html_to_text, strip_for_analysis
from schemas import limits

MAX_BODY_CHARS = 100_000
METADATA_HEADER_CHARS = 2_000
METADATA_MAX_HEADERS = 40
QUESTION_CHARS = 600
_SUBJECT_NOISE = re.compile(
    r"^\s*(?:(?:re|aw|fwd?|sv)\s*(?:\[\d+\])?\s*:\s*|\[[^\]]{1,40}\]\s*)+", re.I
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
MAX_RAW_BYTES = 25 * 1024 * 1024

# Headers the triage classifier sees, flattened to snake_case keys.
TRIAGE_HEADERS: tuple[str, ...] = (
    "List-Id",
    "List-Unsubscribe",
    "List-Post",
    "Precedence",
    "X-Mailing-List",
    "Mailing-List",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Auto-Response-Suppress",
    "Return-Path",
    "Reply-To",
    "Sender",
    "X-Mailer",
    "User-Agent",
    "Content-Type",
    "X-Priority",
    "X-MSMail-Priority",
    "In-Reply-To",
    "References",
    "Organization",
    "X-Spam-Flag",
)

_CHARSET_ALIASES = {
    "": "ascii",
    "x-unknown": "cp1252",
    "unknown": "cp1252",
    "unknown-8bit": "cp1252",
    "x-user-defined": "cp1252",
    "default": "cp1252",
    "_iso-2022-jp$esc": "iso-2022-jp",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
    "chinesebig5": "big5",
}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedEmail:
    """One message, decoded. ``body`` is the whole text (history included, for the quote);
    ``body_clean`` is what the sender wrote now (for analysis)."""

    message_id: str | None
    subject: str
    from_header: str
    from_name: str
    from_email: str
    to: str
    cc: str
    reply_to: str
    date: str
    in_reply_to: str
    references: tuple[str, ...]
    body: str
    body_clean: str
    html_only: bool
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, str]
    content_hash: str
    defects: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        """The exactly-once key: the Message-ID, or a content hash when it is missing."""
        return self.message_id or f"sha256:{self.content_hash}"

    def question_text(self, max_chars: int = 20_000) -> str:
        """Subject and everything the sender wrote now (quotes and signature stripped)."""
        text = f"{self.subject}\n\n{self.body_clean}".strip()
        return text[:max_chars] if text else "(empty message)"

    def question(self, max_chars: int = QUESTION_CHARS) -> str:
        """The job's query: the subject (list tags and Re: removed) and the sender's
        questions — sentences ending in "?" — or, without any, the opening sentences.
        Short on purpose: it is embedded for retrieval and scored for relevance; the whole
        body travels in ``metadata["email"]["body"]``."""
        subject = _SUBJECT_NOISE.sub("", self.subject).strip()
        body = " ".join(self.body_clean.split())
        sentences = [s.strip() for s in _SENTENCE.split(body) if s.strip()]
        asked = [s for s in sentences if s.endswith("?") and len(s) > 8]
        picked = asked or sentences[:3]
        text = subject
        for sentence in picked:
            if len(text) + len(sentence) + 2 > max_chars:
                break
            text = f"{text}\n{sentence}" if text else sentence
        if not text.strip():
            text = body[:max_chars] or "(empty message)"
        return text[:max_chars]

    def to_metadata(self) -> dict[str, dict[str, str]]:
        """``JobRequest.metadata["email"]``: flat strings only (the analysis worker's shape).

        Fits the job's metadata cap (``schemas.limits.MAX_METADATA_BYTES``): headers past
        ``METADATA_HEADER_CHARS`` each are cut, and the body is cut to what room is left.
        Triage reads the first ``workers.email.features.BODY_CHARS`` of it, far below.
        """
        flat: dict[str, str] = {
            "subject": self.subject[:METADATA_HEADER_CHARS],
            "from": self.from_header[:METADATA_HEADER_CHARS],
            "from_name": self.from_name[:METADATA_HEADER_CHARS],
            "from_email": self.from_email[:METADATA_HEADER_CHARS],
            "to": self.to[:METADATA_HEADER_CHARS],
            "message_id": (self.message_id or "")[:METADATA_HEADER_CHARS],
            "date": self.date[:METADATA_HEADER_CHARS],
            "body": "",
            "html_only": "yes" if self.html_only else "",
            "attachments": ", ".join(a.filename for a in self.attachments)[:METADATA_HEADER_CHARS],
        }
        for name, value in list(self.headers.items())[:METADATA_MAX_HEADERS]:
            flat.setdefault(name[:200], value[:METADATA_HEADER_CHARS])
        room = limits.MAX_METADATA_BYTES - _json_bytes({"email": flat}) - 64
        flat["body"] = _fit_utf8_json(self.body_clean, room)
        return {"email": flat}


def header_key(name: str) -> str:
    return name.lower().replace("-", "_")


def _decode_words(raw: str) -> str:
    try:
        return str(make_header(decode_header(raw)))
    except Exception:  # broken encoded words: keep the raw text
        return raw


def _header(msg: Message, name: str) -> str:
    """A header as text; policy-default parsing first, the raw value when it chokes."""
    try:
        value = msg.get(name)
        text = "" if value is None else str(value)
    except Exception:
        raw = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), "")
        text = _decode_words(str(raw))
    return " ".join(text.split())


def decode_bytes(payload: bytes, charset: str | None) -> str:
    """Bytes → text with the declared charset, then UTF-8, cp1252, Latin-1 (never fails)."""
    name = (charset or "").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(name, name)
    candidates = [name] if name else []
    candidates += ["utf-8", "cp1252"]
    for candidate in candidates:
        try:
            codecs.lookup(candidate)
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return payload.decode("latin-1")


def _part_text(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(payload, charset)


def _is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
        filename = part.get_filename()
    except Exception:
        return False
    if disposition == "attachment":
        return True
    return bool(filename) and part.get_content_maintype() != "text"


def _attachment(part: Message) -> Attachment:
    try:
        filename = part.get_filename() or "(unnamed)"
    except Exception:
        filename = "(unnamed)"
    try:
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
    except Exception:
        size = 0
    return Attachment(
        filename=_decode_words(filename), content_type=part.get_content_type(), size=size
    )


def _collect(msg: Message) -> tuple[list[str], list[str], list[Attachment]]:
    plain: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if _is_attachment(part):
            attachments.append(_attachment(part))
        elif ctype == "text/plain":
            plain.append(_part_text(part))
        elif ctype == "text/html":
            htmls.append(_part_text(part))
        elif ctype == "message/rfc822" or part.get_content_maintype() in {
            "image",
            "audio",
            "video",
            "application",
        }:
            attachments.append(_attachment(part))
        elif part.get_content_maintype() == "text":
            plain.append(_part_text(part))
    return plain, htmls, attachments


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def parse_message(raw: bytes) -> ParsedEmail:
    """Parse one message. Raises ``InvalidMessage`` (with the reason) when it is not mail."""
    if not raw or not raw.strip():
        raise InvalidMessage("empty message")
    if len(raw) > MAX_RAW_BYTES:
        raise InvalidMessage(f"message too large ({len(raw)} bytes > {MAX_RAW_BYTES})")
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:
        raise InvalidMessage(f"unreadable message: {exc}") from exc
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise InvalidMessage("no headers: not an RFC 822 message")
    if not any(_header(msg, h) for h in ("From", "Subject", "Message-ID", "Date", "To")):
        raise InvalidMessage("none of From/To/Subject/Date/Message-ID present")
    try:
        plain, htmls, attachments = _collect(msg)
    except Exception as exc:  # a MIME tree the library cannot walk
        raise InvalidMessage(f"unreadable MIME structure: {exc}") from exc

    html_only = not any(p.strip() for p in plain) and bool(htmls)
    body = "\n\n".join(p.strip("\n") for p in plain if p.strip())
    if not body.strip() and htmls:
        body = "\n\n".join(html_to_text(h) for h in htmls)
    body = body.replace("\r\n", "\n").replace("\r", "\n")[:MAX_BODY_CHARS]

    from_header = _header(msg, "From")
    from_name, from_email = parseaddr(from_header)
    message_id = _header(msg, "Message-ID").strip() or None
    if message_id is not None and not message_id.startswith("<"):
        message_id = f"<{message_id.strip('<>')}>"
    references = tuple(_header(msg, "References").split())
    headers = {header_key(h): _header(msg, h) for h in TRIAGE_HEADERS}
    headers = {k: v for k, v in headers.items() if v}
    defects = tuple(sorted({type(d).__name__ for d in msg.defects}))

    return ParsedEmail(
        message_id=message_id,
        subject=_header(msg, "Subject"),
        from_header=from_header,
        from_name=from_name,
        from_email=from_email.lower(),
        to=_header(msg, "To"),
        cc=_header(msg, "Cc"),
        reply_to=_header(msg, "Reply-To"),
        date=_header(msg, "Date"),
        in_reply_to=_header(msg, "In-Reply-To"),
        references=references,
        body=body,
        body_clean=strip_for_analysis(body)[:MAX_BODY_CHARS],
        html_only=html_only,
        attachments=tuple(attachments),
        headers=headers,
        content_hash=content_hash(raw),
        defects=defects,
    )


def addresses(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs of an address header, empty ones dropped."""
    return [(n, a) for n, a in getaddresses([value]) if a]


__all__ = [
    "TRIAGE_HEADERS",
    "Attachment",
    "ParsedEmail",
    "addresses",
    "content_hash",
    "decode_bytes",
    "header_key",
    "parse_message",
]


def _json_bytes(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _fit_utf8_json(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` whose JSON string form fits in ``max_bytes``."""
    if max_bytes <= 2:
        return ""
    if _json_bytes(text) <= max_bytes:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on the prefix length: escapes and UTF-8 widths vary
        mid = (lo + hi + 1) // 2
        if _json_bytes(text[:mid]) <= max_bytes:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]

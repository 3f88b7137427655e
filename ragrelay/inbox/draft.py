"""Reply drafts: threading headers, swapped addresses, the original quoted. Pure; no I/O."""

from __future__ import annotations

import hashlib
import re
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from ragrelay.inbox.parse import ParsedEmail, addresses
from ragrelay.inbox.text import quote_for_reply

DRAFT_KEY_HEADER = "X-Ragrelay-Reply-Key"
_RE_PREFIX = re.compile(r"^\s*(?:re|aw|sv)\s*(?:\[\d+\])?\s*:", re.IGNORECASE)
MAX_REFERENCES = 20


def reply_subject(subject: str) -> str:
    subject = subject.strip()
    if _RE_PREFIX.match(subject):
        return subject
    return f"Re: {subject}" if subject else "Re: your message"


def key_digest(tenant: str, key: str) -> str:
    """A short stable id of (tenant, message key): draft file names and the draft header."""
    return hashlib.sha256(f"{tenant}\x00{key}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _single_line(value: str) -> str:
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def reply_recipient(original: ParsedEmail) -> str:
    """Reply-To when given, else From (one address, display name kept)."""
    for header in (original.reply_to, original.from_header):
        found = addresses(header)
        if found:
            name, addr = found[0]
            return formataddr((name, addr))
    return ""


def reply_sender(original: ParsedEmail, mailbox_address: str | None) -> str:
    """The configured mailbox address, else the original's first To address."""
    if mailbox_address:
        return mailbox_address
    found = addresses(original.to)
    return formataddr(found[0]) if found else ""


def attribution(original: ParsedEmail) -> str:
    who = original.from_name or original.from_email or "you"
    return f"On {original.date}, {who} wrote:" if original.date else f"{who} wrote:"


def build_draft(
    original: ParsedEmail,
    body: str,
    *,
    tenant: str,
    mailbox_address: str | None = None,
    job_id: str | None = None,
    domain: str = "ragrelay.invalid",
) -> EmailMessage:
    """The draft reply to ``original``: ``body`` on top, the original quoted below."""
    draft = EmailMessage()
    sender = reply_sender(original, mailbox_address)
    if sender:
        draft["From"] = sender
    recipient = reply_recipient(original)
    if recipient:
        draft["To"] = recipient
    draft["Subject"] = _single_line(reply_subject(original.subject))
    draft["Date"] = formatdate(localtime=False, usegmt=True)
    draft["Message-ID"] = make_msgid(domain=domain)
    if original.message_id:
        draft["In-Reply-To"] = original.message_id
        refs = [*original.references, original.message_id][-MAX_REFERENCES:]
        draft["References"] = " ".join(refs)
    draft[DRAFT_KEY_HEADER] = key_digest(tenant, original.key)
    if job_id:
        draft["X-Ragrelay-Job"] = job_id
    quoted = quote_for_reply(original.body) if original.body.strip() else ">"
    text = f"{body.rstrip()}\n\n{attribution(original)}\n{quoted}\n"
    draft.set_content(text, charset="utf-8")
    return draft


__all__ = [
    "DRAFT_KEY_HEADER",
    "attribution",
    "build_draft",
    "key_digest",
    "reply_recipient",
    "reply_sender",
    "reply_subject",
]

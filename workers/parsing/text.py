"""Plain text, Markdown (headings -> section path) and e-mail (.eml: the subject is the
title, the text/plain body is preferred, else the HTML body without its boilerplate)."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from workers.parsing.html import parse_html_bytes
from workers.parsing.types import Parsed, ParseLimits, UnreadableFile


def decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-save it as UTF-8"
        ) from exc


def parse_text(raw: bytes, limits: ParseLimits, *, markdown: bool) -> Parsed:
    text = decode_utf8(raw)[: limits.max_chars]
    if not text.strip():
        raise UnreadableFile("no text (the file is blank)")
    out = Parsed(kind="markdown" if markdown else "text")
    if markdown:
        from workers.parsing.headings import sections

        for path, body in sections(text):
            out.add(body, section=path)
            if path and not out.title:
                out.title = path.split(" > ")[0]
    else:
        out.add(text)
    return out


def parse_eml(raw: bytes, limits: ParseLimits) -> Parsed:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):  # the default policy always makes one
        raise UnreadableFile("unreadable e-mail")
    subject = str(msg.get("subject", "") or "").strip()
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        raise UnreadableFile("an e-mail without a text or HTML body")
    try:
        content = part.get_content()
    except (LookupError, ValueError) as exc:
        raise UnreadableFile(f"unreadable e-mail body: {exc}") from exc
    if part.get_content_subtype() == "html":
        body = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        out = parse_html_bytes(body, limits)
        out.kind = "eml"
    else:
        out = Parsed(kind="eml")
        out.add(str(content)[: limits.max_chars])
    out.title = subject or out.title
    if not out.parts:
        raise UnreadableFile("an e-mail with an empty body")
    return out

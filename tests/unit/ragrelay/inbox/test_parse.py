"""Parsing real and hostile mail: the stdlib ``email`` package with fallbacks."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bus.errors import InvalidMessage
from ragrelay.inbox.parse import decode_bytes, parse_message
from ragrelay.inbox.text import html_to_text, quote_for_reply, strip_for_analysis
from schemas import JobRequest, limits

SHARED_INBOX = Path(__file__).resolve().parents[4].parent / "shared" / "data" / "emails" / "inbox"


def test_every_shared_inbox_message_parses() -> None:
    files = sorted(SHARED_INBOX.glob("*.eml"))
    assert len(files) == 744
    html_only = 0
    for path in files:
        parsed = parse_message(path.read_bytes())
        assert parsed.subject or parsed.body or parsed.from_header, path.name
        assert parsed.key
        assert "<html" not in parsed.body_clean.lower()[:200], path.name
        html_only += parsed.html_only
    assert html_only > 20  # the corpus does hold HTML-only mail, converted to text


def test_broken_and_unknown_charsets_fall_back() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: =?x-unknown?q?caf=E9?=\r\nMessage-ID: <c@x>\r\n"
        b'Content-Type: text/plain; charset="x-no-such-charset"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=E9 cr=E8me, 10 =80\r\n"
    )
    parsed = parse_message(raw)
    assert "Café crème, 10 €" in parsed.body  # cp1252 fallback after utf-8 fails
    assert parsed.subject  # never raises on a broken encoded word
    assert decode_bytes("naïve".encode(), "utf8") == "naïve"
    assert decode_bytes(b"\xff\xfe", None) == "ÿþ"


def test_base64_multipart_prefers_plain_and_lists_attachments() -> None:
    pdf = base64.b64encode(b"%PDF-1.4 fake").decode()
    text = base64.b64encode(b"Hello, is the patch in 2.4?").decode()
    raw = (
        "From: Ann <ann@example.org>\r\nTo: list@example.org\r\nSubject: patch\r\n"
        "Message-ID: <m1@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        '--XX\r\nContent-Type: multipart/alternative; boundary="YY"\r\n\r\n'
        "--YY\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{text}\r\n--YY\r\nContent-Type: text/html\r\n\r\n<p>HTML twin</p>\r\n--YY--\r\n"
        '--XX\r\nContent-Type: application/pdf; name="fix.pdf"\r\n'
        'Content-Disposition: attachment; filename="fix.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{pdf}\r\n--XX--\r\n"
    ).encode()
    parsed = parse_message(raw)
    assert parsed.body.strip() == "Hello, is the patch in 2.4?"
    assert not parsed.html_only
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [
        ("fix.pdf", "application/pdf")
    ]
    assert "%PDF" not in parsed.body
    assert parsed.to_metadata()["email"]["attachments"] == "fix.pdf"


def test_html_only_mail_becomes_text() -> None:
    raw = (
        b"From: shop@example.com\r\nSubject: Sale\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n"
        b"<html><head><style>p{color:red}</style></head><body><p>Big&nbsp;sale</p>"
        b"<div>Prices from \xa35</div><script>x()</script></body></html>"
    )
    parsed = parse_message(raw)
    assert parsed.html_only
    assert [line for line in parsed.body.splitlines() if line] == ["Big sale", "Prices from £5"]
    assert html_to_text("<p>a<br>b") == "a\nb"


def test_quotes_and_signatures_stripped_for_analysis_kept_for_quote() -> None:
    body = (
        "On Mon, 1 Jul 2002, Bob wrote:\n> old question?\n> more\n\n"
        "Try kernel 2.4.19, it fixed that for me.\n\n-- \nAlice\nhttp://alice.example\n"
    )
    assert strip_for_analysis(body) == "Try kernel 2.4.19, it fixed that for me."
    outlook = "Sounds good.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nold text"
    assert strip_for_analysis(outlook) == "Sounds good."
    footer = "My question?\n_______________________________________________\nIrish Linux Users' Group mailing list\nhttp://www.linux.ie/mailman/listinfo/ilug"
    assert strip_for_analysis(footer) == "My question?"
    quoted = quote_for_reply(body)
    assert "> > old question?" in quoted and "> Alice" in quoted


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\x00\x01 binary junk \xff", "not an RFC 822"),
        (b"X-Foo: bar\r\n\r\nno identifying headers", "none of From"),
    ],
)
def test_unparseable_messages_raise_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        parse_message(raw)


def test_missing_message_id_uses_a_content_hash() -> None:
    raw = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
    parsed = parse_message(raw)
    assert parsed.message_id is None
    assert parsed.key.startswith("sha256:") and parsed.key == f"sha256:{parsed.content_hash}"
    assert parse_message(raw).key == parsed.key


def test_metadata_is_flat_strings_for_the_worker() -> None:
    raw = (
        b'From: "Doe, Jane" <jane@example.org>\r\nTo: help@example.com\r\nSubject: Q\r\n'
        b"List-Id: Users <users.example.org>\r\nPrecedence: bulk\r\nMessage-ID: <q@x>\r\n\r\n"
        b"How do I reset it?\r\n"
    )
    meta = parse_message(raw).to_metadata()["email"]
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    assert meta["list_id"] == "Users <users.example.org>"
    assert meta["precedence"] == "bulk"
    assert meta["from_email"] == "jane@example.org"
    assert meta["body"] == "How do I reset it?"


def test_every_message_becomes_job_metadata_within_the_cap() -> None:
    """A long, multi-byte body and many long headers still make a job that can be stored."""
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 5000) for i in range(100))
    body = ('é€😀 quote " back\\slash \n' * 20_000).encode()
    raw = (
        b"From: a@example.org\r\nSubject: big\r\n"
        + headers
        + b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        + body
    )
    meta = parse_message(raw).to_metadata()
    assert limits.metadata(meta) is meta
    assert len(meta["email"]["body"]) > 1000  # cut to fit, not dropped
    for path in sorted(SHARED_INBOX.glob("*.eml"))[:200]:
        parsed = parse_message(path.read_bytes())
        JobRequest(query="q", kind="email_reply", metadata=parsed.to_metadata())

"""Writing untrusted text and links into HTML: ``esc``, ``safe_url``, ``link``, ``csp_hash``.

Every page we render (the timeline, the sign-in form) goes through these. Text is
HTML-escaped, quotes included, so it is safe in element content and in quoted attributes.
A URL from data (a document's ``metadata.url``, a web result) becomes an ``href`` only when
it is ``http:``/``https:`` with a host, or relative to the page without naming another host:
``javascript:``, ``data:``, ``vbscript:`` and every other scheme are refused, however they
are spelt. The check follows how browsers parse URLs (the WHATWG URL standard): they strip
leading and trailing C0 controls and spaces, delete tabs and newlines anywhere, read the
scheme case-insensitively and treat ``\\`` like ``/`` in http(s) URLs. Anything else that
looks odd (a control character, a colon before the first ``/``, ``?`` or ``#`` that is not
``http:``/``https:``) is refused rather than guessed at.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html import escape, unescape
from urllib.parse import urlsplit

SAFE_SCHEMES = frozenset({"http", "https"})
MAX_URL_CHARS = 4096

_STRIPPED = "".join(chr(c) for c in range(0x21))  # C0 controls and space, at either end
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")  # deleted anywhere by the URL parser
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FIRST_SEGMENT = re.compile(r"[/?#\\]")


def esc(value: object) -> str:
    """``value`` as text for HTML content or a quoted attribute."""
    return escape(str(value), quote=True)


def safe_url(url: str | None) -> str | None:
    """``url`` cleaned as a browser would read it, if it is http(s) or same-host relative;
    else None. The result still needs :func:`esc` inside an attribute.

    A URL that would only be safe while its HTML character references stay undecoded
    (``&#106;avascript:``) is refused too: whoever reads it next may decode them."""
    if not url:
        return None
    cleaned = _checked(url)
    if cleaned is None or (unescape(url) != url and _checked(unescape(url)) is None):
        return None
    return cleaned


def _checked(url: str) -> str | None:
    cleaned = url.strip(_STRIPPED).translate(_TAB_NEWLINE)
    if not cleaned or len(cleaned) > MAX_URL_CHARS or _CONTROL.search(cleaned):
        return None
    head = _FIRST_SEGMENT.split(cleaned, maxsplit=1)[0]
    if ":" in head:  # it names a scheme (or is something no browser would read as relative)
        scheme, _, rest = cleaned.partition(":")
        if scheme.lower() not in SAFE_SCHEMES or not rest.startswith("//"):
            return None
        try:
            host = urlsplit(cleaned).hostname
        except ValueError:  # e.g. an unclosed IPv6 bracket
            return None
        return cleaned if host else None
    # Relative: fine unless it reaches another host (``//evil``, ``\\evil``, ``/\evil``).
    if cleaned.replace("\\", "/").startswith("//"):
        return None
    return cleaned


def link(url: str | None, text: str, *, otherwise: str = "") -> str:
    """``<a href=url>text</a>`` when ``url`` is safe (see :func:`safe_url`), else the
    escaped ``otherwise`` (empty by default): an unsafe URL is never written as a link."""
    href = safe_url(url)
    if href is None:
        return esc(otherwise)
    return f'<a href="{esc(href)}" rel="noopener noreferrer nofollow">{esc(text)}</a>'


def csp_hash(source: str) -> str:
    """The CSP source expression allowing exactly this inline ``<script>``/``<style>`` body."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


__all__ = ["MAX_URL_CHARS", "SAFE_SCHEMES", "csp_hash", "esc", "link", "safe_url"]

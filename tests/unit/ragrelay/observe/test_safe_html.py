"""The safe-link helper every rendered page uses: only http(s) and same-host relative URLs
become links, whatever spelling a script URL hides behind."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from ragrelay.observe.safe_html import csp_hash, esc, link, safe_url

REFUSED = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "JAVASCRIPT:alert(1)",
    " javascript:alert(1)",
    "\x00javascript:alert(1)",
    "\x01\x02\x1f javascript:alert(1)",
    "\njavascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "jav\x00ascript:alert(1)",
    "javascript\t:alert(1)",
    "javascript:alert(1)//http://example.com",
    "javascript://example.com/%0Aalert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "javascript&colon;alert(1)",
    "&#x2F;&#x2F;evil.example",
    "%6Aavascript:alert(1)",
    "\u00a0javascript:alert(1)",
    "\u2028javascript:alert(1)",
    "\uff4aavascript:alert(1)",  # fullwidth j
    "data:text/html,<script>alert(1)</script>",
    "DATA:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    " data:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "file:///etc/passwd",
    "blob:http://example.com/uuid",
    "filesystem:http://example.com/temporary/x",
    "mailto:someone@example.com",
    "ftp://example.com/file",
    "//evil.example",
    "///evil.example",
    "\\\\evil.example",
    "/\\evil.example",
    "\\/evil.example",
    " //evil.example",
    "http:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "http://",
    "https:///path-only",
    "http://[::1",
    "https://example.com/a\x00b",
    "https://example.com/\x7f",
    "https://example.com/" + "a" * 5000,
    "",
    " \t\n",
]

ALLOWED = [
    ("https://example.com/doc?id=1&x=2#frag", "https://example.com/doc?id=1&x=2#frag"),
    ("http://example.com", "http://example.com"),
    ("HTTPS://EXAMPLE.COM/A", "HTTPS://EXAMPLE.COM/A"),
    ("  https://example.com/a  ", "https://example.com/a"),
    ("https://exa\tmple.com/a\n", "https://example.com/a"),
    ("http://user@example.com:8080/p", "http://user@example.com:8080/p"),
    ("https://example.com/a:b", "https://example.com/a:b"),
    ("https://example.com/?q=javascript:alert(1)", "https://example.com/?q=javascript:alert(1)"),
    ("/ui/jobs/abc", "/ui/jobs/abc"),
    ("docs/page.html", "docs/page.html"),
    ("page?next=a:b", "page?next=a:b"),
    ("#section-2", "#section-2"),
    ("?page=2", "?page=2"),
    ("https://example.com/?a=1&amp;b=2", "https://example.com/?a=1&amp;b=2"),
    ("https://example.com/\x00", "https://example.com/"),  # stripped at the end, as browsers do
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_script_data_or_other_host_url_is_refused(url: str) -> None:
    assert safe_url(url) is None
    assert "<a" not in link(url, "link")


@pytest.mark.parametrize(("url", "cleaned"), ALLOWED)
def test_http_https_and_same_host_relative_urls_are_kept(url: str, cleaned: str) -> None:
    assert safe_url(url) == cleaned


def test_none_is_refused() -> None:
    assert safe_url(None) is None
    assert link(None, "link", otherwise="no link") == "no link"


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.anchors.append(dict(attrs))


def anchors(html: str) -> list[dict[str, str | None]]:
    parser = _Anchors()
    parser.feed(html)
    return parser.anchors


def test_a_link_is_escaped_and_does_not_leak_the_referrer() -> None:
    html = link('https://example.com/?a="><script>x</script>&b=1', "<b>title</b>")
    assert "<script>" not in html and "<b>" not in html
    [a] = anchors(html)
    # the browser decodes the attribute back to the URL itself, nothing more
    assert a["href"] == 'https://example.com/?a="><script>x</script>&b=1'
    assert a["rel"] == "noopener noreferrer nofollow"


def test_an_unsafe_link_shows_only_the_escaped_fallback() -> None:
    html = link("javascript:alert(1)", "link", otherwise="<not linked>")
    assert html == "&lt;not linked&gt;" and not anchors(html)


def test_esc_escapes_quotes_for_attributes() -> None:
    assert esc("a\"b'c<d>&") == "a&quot;b&#x27;c&lt;d&gt;&amp;"


def test_csp_hash_is_the_base64_sha256_source_expression() -> None:
    # echo -n 'alert(1)' | openssl dgst -sha256 -binary | base64
    assert csp_hash("alert(1)") == "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"

"""HTML with lxml: boilerplate removed (scripts, styles, navigation, headers, footers,
asides, forms), headings become the section path, tables become rows with their header.
Chosen over trafilatura by measurement (docs/benchmarks-ingest.md): as clean on
marked-up pages, several times faster, and it keeps every section, not a guessed "main"."""

from __future__ import annotations

from lxml import etree
from lxml import html as lhtml

from workers.parsing.types import Parsed, ParseLimits, UnreadableFile

DROP = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside",
    "form", "iframe", "svg", "button", "select", "head",
)  # fmt: skip
_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search"}
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCKS = {"p", "li", "pre", "blockquote", "dd", "dt", "figcaption", "td", "th", "div"}


def parse_html_bytes(raw: bytes, limits: ParseLimits, *, encoding: str = "utf-8") -> Parsed:
    """``encoding`` is given to lxml explicitly: left to itself it reads a page without a
    charset declaration as Latin-1 and turns every en dash (U+2013) into three Latin-1 characters
    (docs/benchmarks-ingest.md, the fidelity run that found it)."""
    try:
        root = lhtml.document_fromstring(raw, parser=lhtml.HTMLParser(encoding=encoding))
    except (etree.ParserError, ValueError) as exc:
        raise UnreadableFile(f"unreadable HTML: {exc}") from exc
    title_el = root.find(".//title")
    title = (title_el.text_content() if title_el is not None else "").strip()
    for el in list(root.iter(etree.Element)):
        if el.getparent() is None:
            continue
        if (
            el.tag in DROP
            or (el.get("role") or "").lower() in _ROLES
            or el.get("aria-hidden") == "true"
            or "display:none" in (el.get("style") or "").replace(" ", "")
        ):
            el.drop_tree()
    body = root.find(".//body")
    out = Parsed(kind="html", title=title)
    walker = _Walker(out, limits)
    walker.walk(body if body is not None else root)
    walker.flush()
    if not out.parts:
        raise UnreadableFile("no text in the HTML once scripts and navigation are removed")
    if not out.title:
        out.title = walker.first_heading
    return out


class _Walker:
    def __init__(self, out: Parsed, limits: ParseLimits) -> None:
        self.out = out
        self.limits = limits
        self.stack: list[tuple[int, str]] = []
        self.body: list[str] = []
        self.chars = 0
        self.first_heading = ""

    def flush(self) -> None:
        self.out.add("\n".join(self.body), section=" > ".join(t for _, t in self.stack))
        self.body.clear()

    def text(self, line: str) -> None:
        line = " ".join(line.split())
        if line:
            self.chars += len(line)
            if self.chars > self.limits.max_chars:
                raise UnreadableFile(f"more than {self.limits.max_chars} characters of text")
            self.body.append(line)

    def walk(self, el: lhtml.HtmlElement) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _HEADINGS:
            heading = " ".join(el.text_content().split())
            if heading:
                self.flush()
                level = _HEADINGS[tag]
                while self.stack and self.stack[-1][0] >= level:
                    self.stack.pop()
                self.stack.append((level, heading))
                self.first_heading = self.first_heading or heading
            return
        if tag == "table":
            self._table(el)
            return
        if tag in _BLOCKS and not any(
            isinstance(c.tag, str) and (c.tag in _BLOCKS or c.tag in _HEADINGS or c.tag == "table")
            for c in el.iterdescendants()
        ):
            self.text(el.text_content())
            return
        self.text(el.text or "")
        for child in el:
            self.walk(child)
            self.text(child.tail or "")

    def _table(self, table: lhtml.HtmlElement) -> None:
        rows = [
            [" ".join(c.text_content().split()) for c in tr if c.tag in ("td", "th")]
            for tr in table.iter("tr")
        ]
        rows = [r for r in rows if any(r)]
        if not rows:
            return
        header, *rest = rows
        if not rest:
            self.text("; ".join(header))
        for row in rest:
            self.text(
                "; ".join(f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v)
            )

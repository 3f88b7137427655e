"""An MCP server's answer as ranked chunks: pure functions, no SDK, no I/O.

Each text the server returned (a text block, an embedded text resource, structured content)
is a ``Piece``; long pieces are split at paragraph boundaries into passages of at most
``MAX_PASSAGE_CHARS``; passages are ranked by how many of the question's terms they hold
(ties keep the server's order) and the best ``max_chunks`` become chunks whose citation
names the server, the tool (or resource) and, when the server named one, the resource URI.
The text is kept verbatim: it is fenced as data with every other retrieved chunk before it
reaches a prompt (``workers/guardrails.py``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from schemas import Chunk, ScoredChunk

MAX_PASSAGE_CHARS = 1_500
MAX_SOURCE_CHARS = 200_000  # what one server's answer may contribute before passages are cut
_WORD = re.compile(r"[A-Za-z0-9]{3,}")
_STOP = frozenset(
    "the and for are was were with that this what which who whom how why when where does did "
    "from into have has had not you your our its their there then than them they".split()
)


@dataclass(frozen=True)
class Piece:
    text: str
    uri: str | None = None
    name: str | None = None


def terms(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP}


def passages(text: str, max_chars: int = MAX_PASSAGE_CHARS) -> list[str]:
    """``text`` in passages of at most ``max_chars``, split between paragraphs when it can,
    between lines or words when a paragraph is longer."""
    out: list[str] = []
    current = ""
    for para in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not para:
            continue
        for part in _split_long(para, max_chars):
            if current and len(current) + 2 + len(part) > max_chars:
                out.append(current)
                current = part
            else:
                current = f"{current}\n\n{part}" if current else part
    if current:
        out.append(current)
    return out


def _split_long(para: str, max_chars: int) -> list[str]:
    if len(para) <= max_chars:
        return [para]
    parts: list[str] = []
    rest = para
    while len(rest) > max_chars:
        cut = rest.rfind("\n", 0, max_chars)
        if cut < max_chars // 2:
            cut = rest.rfind(" ", 0, max_chars)
        if cut < max_chars // 2:
            cut = max_chars
        parts.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        parts.append(rest)
    return parts


def to_chunks(
    server: str, target: str, pieces: list[Piece], query: str, max_chunks: int
) -> list[ScoredChunk]:
    """The server's ``pieces`` as at most ``max_chunks`` chunks, best first for ``query``."""
    wanted = terms(query)
    budget = MAX_SOURCE_CHARS
    candidates: list[tuple[float, int, Piece, str]] = []
    for piece in pieces:
        for text in passages(piece.text[:budget]):
            overlap = len(wanted & terms(text)) / max(1, len(wanted))
            candidates.append((overlap, len(candidates), piece, text))
        budget -= len(piece.text)
        if budget <= 0:
            break
    candidates.sort(key=lambda c: (-c[0], c[1]))
    hits: list[ScoredChunk] = []
    for rank, (score, _, piece, text) in enumerate(candidates[:max_chunks], start=1):
        where = piece.uri or ""
        digest = hashlib.sha256(f"{where}\n{text}".encode()).hexdigest()[:12]
        doc_id = f"mcp:{server}/{target}"
        metadata: dict[str, str] = {"mcp_server": server, "mcp_target": target}
        if piece.uri:
            metadata["mcp_resource"] = piece.uri
            metadata["url"] = piece.uri
        title = f"{server} · {target}" + (f" · {piece.name or piece.uri}" if piece.uri else "")
        hits.append(
            ScoredChunk(
                chunk=Chunk(
                    chunk_id=f"{doc_id}#{digest}",
                    doc_id=doc_id,
                    title=title,
                    text=text,
                    source="mcp",
                    chunk_index=rank - 1,
                    metadata=metadata,
                ),
                score=round(score, 4),
                rank=rank,
                retriever=f"mcp:{server}",
            )
        )
    return hits

"""Fan-in of retrieval shards: de-duplicate and fuse ranked lists (reciprocal-rank fusion)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from schemas import Chunk, ScoredChunk


def rrf(ranked_lists: Iterable[Sequence[ScoredChunk]], *, k: int = 60) -> list[ScoredChunk]:
    """Reciprocal-rank fusion: score(c) = Σ 1/(k + rank). Ties keep first-seen order."""
    scores: dict[str, float] = {}
    first: dict[str, Chunk] = {}
    for hits in ranked_lists:
        for rank, hit in enumerate(hits, start=1):
            cid = hit.chunk.chunk_id
            scores[cid] = scores.get(cid, 0.0) + 1.0 / (k + rank)
            first.setdefault(cid, hit.chunk)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [
        ScoredChunk(chunk=first[cid], score=scores[cid], rank=i, retriever="rrf")
        for i, cid in enumerate(order, start=1)
    ]

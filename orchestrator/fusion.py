"""Fan-in of retrieval shards: de-duplicate and fuse ranked lists (reciprocal-rank fusion)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from schemas import Chunk, ScoredChunk


def rrf(
    ranked_lists: Iterable[Sequence[ScoredChunk]],
    *,
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[ScoredChunk]:
    """Reciprocal-rank fusion: score(c) = Σ w/(k + rank), w = 1 unless ``weights`` gives one
    per list. Ties keep first-seen order."""
    scores: dict[str, float] = {}
    first: dict[str, Chunk] = {}
    for i, hits in enumerate(ranked_lists):
        w = 1.0 if weights is None else weights[i]
        for rank, hit in enumerate(hits, start=1):
            cid = hit.chunk.chunk_id
            scores[cid] = scores.get(cid, 0.0) + w / (k + rank)
            first.setdefault(cid, hit.chunk)
    order = sorted(scores, key=lambda cid: -scores[cid])
    return [
        ScoredChunk(chunk=first[cid], score=scores[cid], rank=i, retriever="rrf")
        for i, cid in enumerate(order, start=1)
    ]

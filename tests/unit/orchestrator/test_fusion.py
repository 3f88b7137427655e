from orchestrator.fusion import rrf
from schemas import Chunk, ScoredChunk


def hit(cid: str) -> ScoredChunk:
    return ScoredChunk(chunk=Chunk(chunk_id=cid, doc_id=cid.split("#")[0], text=cid), score=1.0)


def test_rrf_rewards_agreement_and_deduplicates() -> None:
    fused = rrf([[hit("a#0"), hit("b#0")], [hit("b#0"), hit("c#0")]])
    assert [h.chunk.chunk_id for h in fused] == ["b#0", "a#0", "c#0"]
    assert [h.rank for h in fused] == [1, 2, 3]


def test_rrf_of_nothing_is_empty() -> None:
    assert rrf([[], []]) == []

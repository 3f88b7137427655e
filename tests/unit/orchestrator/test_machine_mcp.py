"""The tenant's MCP servers as one more retrieval source, in the pure state machine."""

from __future__ import annotations

from orchestrator.machine import advance
from schemas import AnalysisResult, Chunk, RetrievalResult, ScoredChunk
from tests.unit.orchestrator.test_machine import (
    chunk,
    dispatched,
    new_state,
    result_event,
    submitted,
)


def test_mcp_is_one_shard_asked_the_users_question_and_its_failures_degrade_the_job() -> None:
    state = submitted(new_state())
    t = advance(
        state,
        result_event(
            "j1/1/analysis/0",
            "analysis",
            AnalysisResult(
                job_id="j1",
                step_id="j1/1/analysis/0",
                rewrites=["cats purring", "purr"],
                sources=["internal", "mcp"],
            ),
        ),
    )
    shards = dispatched(t, "retrieval")
    assert [d.payload["source"] for d in shards] == ["internal", "internal", "mcp"]
    assert shards[2].payload["query"] == "how do cats purr?"  # the user's own words
    tool_chunk = Chunk(
        chunk_id="mcp:repo/git_log#ab", doc_id="mcp:repo/git_log", text="cats purr", source="mcp"
    )
    s = t.state
    for d in shards:
        mcp = d.payload["source"] == "mcp"
        t = advance(
            s,
            result_event(
                d.step_id,
                "retrieval",
                RetrievalResult(
                    job_id="j1",
                    step_id=d.step_id,
                    source=d.payload["source"],
                    hits=[ScoredChunk(chunk=tool_chunk if mcp else chunk(1), score=1.0)],
                    notes=["mcp:slow: timed out after 3 s"] if mcp else [],
                ),
            ),
        )
        s = t.state
    assert len(dispatched(t, "generation")) == 1
    assert "mcp:repo/git_log#ab" in [c.chunk_id for c in s.context]
    assert s.degraded == ["mcp:slow: timed out after 3 s"]
    completed = [e for e in t.trace if e.type == "step.completed" and e.stage == "retrieval"]
    mcp_shard = [e for e in completed if e.detail["source"] == "mcp"]
    assert mcp_shard[0].detail["notes"] == ["mcp:slow: timed out after 3 s"]

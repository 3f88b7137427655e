"""The Anthropic provider's pure parts: prices, retry-after, token sizing, parsing, requests."""

from __future__ import annotations

import email.utils
import json
from typing import Any

import pytest
from anthropic.types import MessageParam, TextBlock, ToolUseBlock

from bus.errors import ConfigError, PermanentError
from schemas import AnalysisTask, Chunk, EvaluationTask, GenerationTask, StepLimits
from workers.prompts import load_prompt
from workers.providers.anthropic import output_tokens_for, retry_after_seconds
from workers.providers.anthropic_outputs import (
    AnalysisOutput,
    CitedChunk,
    GenerationOutput,
    MalformedOutput,
    citations_from,
    clean_rewrites,
    input_schema,
    parse_tool_output,
    retry_messages,
)
from workers.providers.anthropic_requests import (
    analysis_request,
    evaluation_request,
    generation_request,
)
from workers.providers.pricing import Price, PriceTable

TABLE = PriceTable.from_mapping(
    {"claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_read": 0.1, "cache_write": 1.25}}
)


# --- prices -----------------------------------------------------------------------------------------


def test_cost_adds_the_four_token_kinds_per_million() -> None:
    usage = TABLE.usage(
        "claude-haiku-4-5",
        input_tokens=1_000,
        output_tokens=200,
        cache_read_tokens=10_000,
        cache_write_tokens=2_000,
    )
    assert usage.cost_usd == pytest.approx(
        (1_000 * 1 + 200 * 5 + 10_000 * 0.1 + 2_000 * 1.25) / 1e6
    )
    assert usage.llm_calls == 1 and usage.tokens == 13_200


def test_dated_snapshot_ids_use_their_family_price() -> None:
    assert TABLE.price("claude-haiku-4-5-20251001") == Price(1.0, 5.0, 0.1, 1.25)
    assert TABLE.find("claude-haiku-4") is None
    with pytest.raises(ConfigError, match="add it to RAGRELAY_ANTHROPIC_PRICES"):
        TABLE.price("claude-unknown")


def test_bad_price_rows_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="lacks cache_read, cache_write"):
        PriceTable.from_mapping({"m": {"input": 1, "output": 2}})
    with pytest.raises(ConfigError, match="negative"):
        PriceTable.from_mapping(
            {"m": {"input": -1, "output": 2, "cache_read": 0, "cache_write": 0}}
        )


# --- retry-after and max_tokens --------------------------------------------------------------------------


def test_retry_after_prefers_milliseconds_then_seconds_then_a_date() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=1_000_000) == pytest.approx(30)
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0


def test_output_tokens_are_the_stage_cap_lowered_to_what_is_left() -> None:
    assert output_tokens_for(2048, StepLimits(max_tokens=50_000), 3_000) == 2048
    assert output_tokens_for(2048, StepLimits(max_tokens=3_500), 3_000) == 500
    with pytest.raises(PermanentError, match="token budget exhausted"):
        output_tokens_for(2048, StepLimits(max_tokens=3_050), 3_000)


# --- parsing --------------------------------------------------------------------------------------------


def tool_block(name: str, data: dict[str, object], bid: str = "toolu_1") -> ToolUseBlock:
    return ToolUseBlock(id=bid, name=name, input=data, type="tool_use")


def test_parse_validates_the_forced_tool_input() -> None:
    out = parse_tool_output(
        [
            TextBlock(type="text", text="thinking"),
            tool_block("submit_analysis", {"rewrites": ["q"]}),
        ],
        "submit_analysis",
        AnalysisOutput,
    )
    assert out.rewrites == ["q"] and out.sources == ["internal"] and out.needs_retrieval


def test_parse_reports_what_to_fix() -> None:
    with pytest.raises(MalformedOutput) as caught:
        parse_tool_output(
            [tool_block("submit_answer", {"answer": "", "citations": [{"quote": "q"}]})],
            "submit_answer",
            GenerationOutput,
        )
    assert caught.value.tool_use_id == "toolu_1"
    assert "- answer: String should have at least 1 character" in caught.value.feedback
    assert "- citations.0.chunk_id: Field required" in caught.value.feedback
    with pytest.raises(MalformedOutput, match="did not call the tool submit_answer") as no_call:
        parse_tool_output([TextBlock(type="text", text="hi")], "submit_answer", GenerationOutput)
    assert no_call.value.tool_use_id is None


def test_retry_messages_echo_the_bad_call_and_answer_it_with_an_error() -> None:
    first: list[MessageParam] = [{"role": "user", "content": "q"}]
    bad = MalformedOutput("fix it", tool_use_id="toolu_9")
    turns = retry_messages(first, [tool_block("submit_answer", {"x": 1}, "toolu_9")], bad)
    assert turns[0] == first[0]
    assert turns[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "toolu_9", "name": "submit_answer", "input": {"x": 1}}
        ],
    }
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_9", "is_error": True, "content": "fix it"}
    ]


def test_input_schema_is_self_contained() -> None:
    schema = input_schema(GenerationOutput)
    assert "$defs" not in str(schema) and "$ref" not in str(schema)
    assert schema["properties"]["citations"]["items"]["required"] == ["chunk_id"]


def test_rewrites_are_cleaned_and_never_empty() -> None:
    assert clean_rewrites([" A  b ", "a B", "", "c"], "q") == ["A b", "c"]
    assert clean_rewrites(["  "], "the question") == ["the question"]
    assert len(clean_rewrites([f"q{i}" for i in range(9)], "q")) == 4


def test_citations_keep_only_retrieved_chunks_with_their_document_data() -> None:
    ctx = [
        Chunk(chunk_id="d#0", doc_id="d", title="T", text="x", metadata={"url": "https://e.x/d"})
    ]
    cites, flags = citations_from(
        [CitedChunk(chunk_id="d#0", quote="x"), CitedChunk(chunk_id="z#1")], ctx
    )
    assert [(c.chunk_id, c.doc_id, c.title, c.url) for c in cites] == [
        ("d#0", "d", "T", "https://e.x/d")
    ]
    assert flags == ["citation_not_retrieved:z#1"]


# --- requests -----------------------------------------------------------------------------------------------


def plain(value: object) -> Any:
    """A request part as plain JSON (what goes on the wire), for indexing in asserts."""
    return json.loads(json.dumps(value))


ENV = {"job_id": "j", "step_id": "j/1/x/0", "tenant": "t"}
CTX = [
    Chunk(chunk_id="d#0", doc_id="d", text="Facts."),
    Chunk(chunk_id="e#0", doc_id="e", text="More."),
]


def test_generation_request_caches_system_and_documents_not_the_question() -> None:
    req = generation_request(
        GenerationTask(**ENV, query="Why?", context=CTX), load_prompt("generation")
    )
    assert req.system == [
        {
            "type": "text",
            "text": load_prompt("generation").text,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    docs, ask = plain(req.messages)[0]["content"]
    assert docs["cache_control"] == {"type": "ephemeral"} and "cache_control" not in ask
    assert '<document id="d#0">\nFacts.\n</document>' in docs["text"]
    assert "<question>\nWhy?\n</question>" in ask["text"]
    assert req.tool_name == "submit_answer" and req.estimated_input_tokens() > 100


def test_context_caching_can_be_turned_off() -> None:
    task = GenerationTask(**ENV, query="Why?", context=CTX)
    req = generation_request(task, load_prompt("generation"), cache_context=False)
    docs = plain(req.messages)[0]["content"][0]
    assert "cache_control" not in docs and "<document" in docs["text"]
    assert req.system[0].get("cache_control") == {"type": "ephemeral"}  # the prompt still is


def test_the_cached_prefix_is_byte_identical_across_iterations() -> None:
    prompt = load_prompt("evaluation")
    one = evaluation_request(EvaluationTask(**ENV, query="Why?", answer="A", context=CTX), prompt)
    two = evaluation_request(
        EvaluationTask(**ENV, query="Why?", answer="B, revised", iteration=2, context=CTX), prompt
    )
    assert one.system == two.system and one.tool == two.tool
    assert plain(one.messages)[0]["content"][0] == plain(two.messages)[0]["content"][0]


def test_analysis_request_carries_feedback_and_previous_rewrites() -> None:
    req = analysis_request(
        AnalysisTask(**ENV, query="Q?", feedback="too vague", previous_rewrites=["Q"]),
        load_prompt("analysis"),
    )
    text = plain(req.messages)[0]["content"][0]["text"]
    assert "<feedback>\ntoo vague\n</feedback>" in text and "- Q" in text
    assert req.flags == []

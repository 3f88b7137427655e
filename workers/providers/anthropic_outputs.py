"""What Claude must return for each stage, how it is parsed, and how it becomes a result.

Each stage's output is a pydantic model offered to Claude as the input schema of one tool
that the request forces (``tool_choice={"type": "tool", "name": ...}``); the ``tool_use``
block's ``input`` is validated against the model. Pure functions; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal, TypeVar

from anthropic.types import (
    MessageParam,
    TextBlock,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlock,
    ToolUseBlockParam,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas import Chunk, Citation
from workers.guardrails import check_citations

M = TypeVar("M", bound=BaseModel)


SourceName = Literal["internal", "user_context", "web"]


def _internal_only() -> list[SourceName]:
    return ["internal"]


class _Output(BaseModel):
    # Tolerate extra keys a model adds; the fields we need are still validated.
    model_config = ConfigDict(extra="ignore")


class AnalysisOutput(_Output):
    rewrites: list[str] = Field(
        min_length=1,
        max_length=6,
        description="1-4 self-contained search queries; the first is the question made specific.",
    )
    sources: list[SourceName] = Field(
        default_factory=_internal_only,
        description="Where to search: internal documents, the user's live data, the web.",
    )
    needs_retrieval: bool = Field(True, description="False only if no document is needed.")
    triage: Literal["spam", "needs_reply", "no_reply"] | None = Field(
        None, description="Emails only; null for plain questions."
    )
    triage_score: float | None = Field(None, ge=0, le=1, description="Confidence in triage.")
    notes: str = Field("", description="One short sentence on the routing decision.")


class CitedChunk(_Output):
    chunk_id: str = Field(min_length=1, description="The id attribute of a <document> used.")
    quote: str = Field("", description="A short passage copied from that document.")


class GenerationOutput(_Output):
    answer: str = Field(min_length=1, description="The answer (or the email reply body).")
    short_answer: str | None = Field(None, description="A few words, when the question has one.")
    citations: list[CitedChunk] = Field(
        default_factory=list, description="The documents the answer uses."
    )
    no_answer: bool = Field(False, description="True if the documents do not contain the answer.")


class EvaluationOutput(_Output):
    faithfulness: float = Field(ge=0, le=1, description="Claims supported by cited documents.")
    relevance: float = Field(ge=0, le=1, description="The answer addresses the question.")
    completeness: float = Field(ge=0, le=1, description="Nothing answerable is missing.")
    verdict: Literal["accept", "revise"]
    feedback: str = Field("", description="With revise: what to fix, actionable.")
    suggested_rewrite: str | None = Field(
        None, description="With revise: a better search query, or null."
    )


TOOLS: dict[str, tuple[str, type[_Output], str]] = {
    "analysis": ("submit_analysis", AnalysisOutput, "Submit the query analysis."),
    "generation": ("submit_answer", GenerationOutput, "Submit the grounded answer."),
    "evaluation": ("submit_evaluation", EvaluationOutput, "Submit the evaluation."),
}


def _inline_refs(schema: Any, defs: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline_refs(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(v, defs) for v in schema]
    return schema


def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with ``$ref``s inlined (one self-contained object schema)."""
    raw = model.model_json_schema()
    inlined: dict[str, Any] = _inline_refs(raw, raw.get("$defs", {}))
    return inlined


@cache
def tool_for(stage: str) -> ToolParam:
    """The stage's forced tool, built once per process (pydantic's JSON-schema generation
    costs about a millisecond per call). Shared: callers must not mutate it."""
    name, model, description = TOOLS[stage]
    return {"name": name, "description": description, "input_schema": input_schema(model)}


@cache
def tool_chars(stage: str) -> int:
    """Length of the tool's JSON, for the input-token estimate (computed once)."""
    return len(json.dumps(tool_for(stage)))


# --- parsing ----------------------------------------------------------------------------------


class MalformedOutput(Exception):
    """The model's output did not validate. ``feedback`` is what we tell it on the retry."""

    def __init__(self, feedback: str, *, tool_use_id: str | None) -> None:
        super().__init__(feedback)
        self.feedback = feedback
        self.tool_use_id = tool_use_id


def _short_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:8]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"- {loc}: {err['msg']}")
    return "\n".join(lines)


def parse_tool_output(content: Sequence[object], tool_name: str, model: type[M]) -> M:
    """The validated input of the ``tool_name`` call in ``content``, or MalformedOutput."""
    for block in content:
        if isinstance(block, ToolUseBlock) and block.name == tool_name:
            try:
                return model.model_validate(block.input)
            except ValidationError as exc:
                raise MalformedOutput(
                    f"The input to {tool_name} did not validate:\n{_short_errors(exc)}\n"
                    f"Call {tool_name} again with every field valid.",
                    tool_use_id=block.id,
                ) from exc
    raise MalformedOutput(
        f"You did not call the tool {tool_name}. Call it now, exactly once.", tool_use_id=None
    )


def retry_messages(
    messages: Sequence[MessageParam], content: Sequence[object], error: MalformedOutput
) -> list[MessageParam]:
    """The conversation extended with the bad output and the validation error as feedback."""
    assistant: list[TextBlockParam | ToolUseBlockParam] = []
    for block in content:
        if isinstance(block, ToolUseBlock):
            assistant.append(
                {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            )
        elif isinstance(block, TextBlock) and block.text.strip():
            assistant.append({"type": "text", "text": block.text})
    if not assistant:
        assistant.append({"type": "text", "text": "(no output)"})
    feedback: list[ToolResultBlockParam | TextBlockParam]
    if error.tool_use_id is not None:
        feedback = [
            {
                "type": "tool_result",
                "tool_use_id": error.tool_use_id,
                "is_error": True,
                "content": error.feedback,
            }
        ]
    else:
        feedback = [{"type": "text", "text": error.feedback}]
    return [
        *messages,
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": feedback},
    ]


# --- outputs to result fields -------------------------------------------------------------------


def clean_rewrites(rewrites: Sequence[str], fallback: str, *, max_rewrites: int = 4) -> list[str]:
    """Stripped, de-duplicated (case-insensitively), bounded; never empty."""
    seen: set[str] = set()
    out: list[str] = []
    for r in rewrites:
        text = " ".join(r.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out[:max_rewrites] or [fallback]


def citations_from(
    cited: Sequence[CitedChunk], context: Sequence[Chunk]
) -> tuple[list[Citation], list[str]]:
    """Citations for the cited chunks that were retrieved; flags for those that were not."""
    by_id = {c.chunk_id: c for c in context}
    check = check_citations((c.chunk_id for c in cited), by_id)
    quotes: dict[str, str] = {}
    for c in cited:
        quotes.setdefault(c.chunk_id, c.quote)
    citations = []
    for cid in check.valid:
        citations.append(Citation.of(by_id[cid], quote=quotes.get(cid, "")[:500]))
    return citations, check.flags


__all__ = [
    "TOOLS",
    "AnalysisOutput",
    "CitedChunk",
    "EvaluationOutput",
    "GenerationOutput",
    "MalformedOutput",
    "citations_from",
    "clean_rewrites",
    "input_schema",
    "parse_tool_output",
    "retry_messages",
    "tool_chars",
    "tool_for",
]

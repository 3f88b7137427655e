"""Building Messages API requests for each stage: pure functions over the stage tasks.

Cache layout (Anthropic caches the prefix ``tools → system → messages`` up to a block
marked ``cache_control``):

1. the system block (the versioned prompt, after the forced tool's schema) — breakpoint 1;
2. for generation and evaluation, the fenced retrieved documents as the first block of the
   user turn — breakpoint 2. The loop re-sends the same context on a later iteration or on
   a malformed-output retry, which then reads it from the cache.

The volatile part (question, feedback, answer under review) comes after the last breakpoint.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from anthropic.types import CacheControlEphemeralParam, MessageParam, TextBlockParam, ToolParam
from pydantic import BaseModel

from schemas import AnalysisTask, Chunk, EvaluationTask, GenerationTask
from workers.guardrails import (
    MAX_QUERY_CHARS,
    clip,
    fence_documents,
    fence_email,
    limit_context,
    neutralise_fences,
)
from workers.prompts import Prompt
from workers.providers.anthropic_outputs import TOOLS, tool_chars, tool_for

EPHEMERAL: CacheControlEphemeralParam = {"type": "ephemeral"}
CHARS_PER_TOKEN = 4  # a deliberately rough estimate, only used to size max_tokens


@dataclass(frozen=True)
class StageRequest:
    """Everything one structured call needs, built without I/O."""

    stage: str
    prompt: Prompt
    system: list[TextBlockParam]
    messages: list[MessageParam]
    tool: ToolParam
    output_model: type[BaseModel]
    flags: list[str] = field(default_factory=list)  # guardrail flags raised while building

    @property
    def tool_name(self) -> str:
        return self.tool["name"]

    def estimated_input_tokens(self) -> int:
        chars = sum(len(b["text"]) for b in self.system)
        shared = self.stage in TOOLS and self.tool is tool_for(self.stage)
        chars += tool_chars(self.stage) if shared else len(json.dumps(self.tool))
        chars += len(json.dumps(self.messages, default=str))
        return chars // CHARS_PER_TOKEN + 1


def system_blocks(prompt: Prompt) -> list[TextBlockParam]:
    return [{"type": "text", "text": prompt.text, "cache_control": EPHEMERAL}]


def _text(value: str, max_chars: int = MAX_QUERY_CHARS) -> str:
    return neutralise_fences(clip(value, max_chars)[0])


def _stage_request(
    stage: str, prompt: Prompt, content: list[TextBlockParam], flags: list[str]
) -> StageRequest:
    return StageRequest(
        stage=stage,
        prompt=prompt,
        system=system_blocks(prompt),
        messages=[{"role": "user", "content": content}],
        tool=tool_for(stage),
        output_model=TOOLS[stage][1],
        flags=flags,
    )


def analysis_request(task: AnalysisTask, prompt: Prompt) -> StageRequest:
    flags: list[str] = []
    parts = [
        f"kind: {task.kind}",
        f"user id given: {'yes' if task.user_id else 'no'}",
        f"<question>\n{_text(task.query)}\n</question>",
    ]
    if task.previous_rewrites:
        listed = "\n".join(f"- {_text(r, 500)}" for r in task.previous_rewrites)
        parts.append(f"<previous_rewrites>\n{listed}\n</previous_rewrites>")
    if task.previous_answer:
        parts.append(f"<previous_answer>\n{_text(task.previous_answer)}\n</previous_answer>")
    if task.feedback:
        parts.append(f"<feedback>\n{_text(task.feedback)}\n</feedback>")
    if task.email:
        fenced, email_flags = fence_email(task.email)
        parts.append(fenced)
        flags += email_flags
    parts.append(f"Call {TOOLS['analysis'][0]}.")
    return _stage_request("analysis", prompt, [{"type": "text", "text": "\n".join(parts)}], flags)


def context_block(
    context: Sequence[Chunk], *, cache: bool = True
) -> tuple[TextBlockParam, list[Chunk], list[str]]:
    """The fenced documents as one block (a cache breakpoint unless ``cache`` is False);
    the chunks actually sent; flags."""
    chunks, flags = limit_context(context)
    if not chunks:
        return {"type": "text", "text": "<documents>\n</documents>\n(no documents)"}, [], flags
    fenced, injection_flags = fence_documents(chunks)
    block: TextBlockParam = {"type": "text", "text": fenced}
    if cache:
        block["cache_control"] = EPHEMERAL
    return block, chunks, flags + injection_flags


def generation_request(
    task: GenerationTask, prompt: Prompt, *, cache_context: bool = True
) -> StageRequest:
    docs, _, flags = context_block(task.context, cache=cache_context)
    parts = [f"kind: {task.kind}", f"<question>\n{_text(task.query)}\n</question>"]
    if task.email:
        fenced, email_flags = fence_email(task.email)
        parts.append(fenced)
        flags += email_flags
    if task.feedback:
        parts.append(f"<feedback>\n{_text(task.feedback)}\n</feedback>")
    parts.append(f"Call {TOOLS['generation'][0]}.")
    return _stage_request(
        "generation", prompt, [docs, {"type": "text", "text": "\n".join(parts)}], flags
    )


def evaluation_request(
    task: EvaluationTask, prompt: Prompt, *, cache_context: bool = True
) -> StageRequest:
    docs, _, flags = context_block(task.context, cache=cache_context)
    cited = ", ".join(c.chunk_id for c in task.citations) or "(none)"
    parts = [
        f"kind: {task.kind}",
        f"<question>\n{_text(task.query)}\n</question>",
        f"<answer>\n{_text(task.answer, 20_000)}\n</answer>",
        f"<cited_ids>{neutralise_fences(cited)}</cited_ids>",
        f"Call {TOOLS['evaluation'][0]}.",
    ]
    return _stage_request(
        "evaluation", prompt, [docs, {"type": "text", "text": "\n".join(parts)}], flags
    )


def contextualize_messages(document_text: str, chunk_text: str) -> list[MessageParam]:
    """Contextual retrieval: the whole document (cached across its chunks), then one chunk."""
    doc: TextBlockParam = {
        "type": "text",
        "text": f"<document>\n{neutralise_fences(document_text)}\n</document>",
        "cache_control": EPHEMERAL,
    }
    ask: TextBlockParam = {
        "type": "text",
        "text": (
            f"<chunk>\n{neutralise_fences(chunk_text)}\n</chunk>\n"
            "Give a short succinct context to situate this chunk within the overall document "
            "for the purposes of improving search retrieval of the chunk. "
            "Answer only with the succinct context and nothing else."
        ),
    }
    return [{"role": "user", "content": [doc, ask]}]


__all__ = [
    "EPHEMERAL",
    "StageRequest",
    "analysis_request",
    "context_block",
    "contextualize_messages",
    "evaluation_request",
    "generation_request",
    "system_blocks",
]

"""The I/O-bound baseline: a hand-written Celery chain of three tasks, each one Claude call.

What a Celery user would write for "analyse, answer, check" without ragrelay: one
``anthropic.Anthropic`` client per worker process, three tasks chained with ``chain``, each
making one Messages call with a forced tool (the same system prompts, tool schemas and user
turns as ragrelay's stages send, so the loopback server does the same work for both), reading
the tool's input as a dict, and passing a small dict on. Same broker settings as ragrelay
(JSON, ``acks_late``, prefetch 1), one queue per task, Redis result backend (the last task's
result is what the benchmark waits for). No validation of the model's output, no budgets, no
guardrails, no traces: the floor a pipeline framework is compared with.
"""

from __future__ import annotations

import os
import threading
from typing import Any, cast

import anthropic
from anthropic.types import MessageParam, TextBlockParam, ToolChoiceToolParam
from celery import Celery, chain

from bus.redis_url import RedisUrl
from ragrelay.bench.rawchain import chain_conf
from workers.prompts import load_prompt
from workers.providers.anthropic_outputs import tool_for

RAW_LLM_STAGES: tuple[str, ...] = ("rawllm1", "rawllm2", "rawllm3")
MODEL = "claude-haiku-4-5"
NO_DOCS = "<documents>\n</documents>\n(no documents)"


def raw_llm_task_name(stage: str) -> str:
    return f"bench.{stage}"


class _Calls:
    """Built once per worker process, as a user would at module level."""

    def __init__(self) -> None:
        self.client = anthropic.Anthropic(
            api_key=os.environ.get("RAGRELAY_ANTHROPIC_API_KEY", "bench-loopback-key"),
            base_url=os.environ.get("RAGRELAY_ANTHROPIC_BASE_URL") or None,
            max_retries=0,
        )
        self.system = {s: load_prompt(s).text for s in ("analysis", "generation", "evaluation")}
        self.tools = {s: tool_for(s) for s in ("analysis", "generation", "evaluation")}

    def call(self, stage: str, max_tokens: int, content: list[TextBlockParam]) -> dict[str, Any]:
        tool = self.tools[stage]
        messages: list[MessageParam] = [{"role": "user", "content": content}]
        choice: ToolChoiceToolParam = {
            "type": "tool",
            "name": tool["name"],
            "disable_parallel_tool_use": True,
        }
        response = self.client.messages.create(
            model=MODEL,
            max_tokens=max_tokens,
            system=[{"type": "text", "text": self.system[stage]}],
            messages=messages,
            tools=[tool],
            tool_choice=choice,
        )
        for block in response.content:
            if block.type == "tool_use":
                return cast(dict[str, Any], block.input)
        raise RuntimeError(f"{stage}: no tool call in the reply")


_calls: _Calls | None = None
_lock = threading.Lock()


def _client() -> _Calls:
    global _calls
    if _calls is None:
        with _lock:
            if _calls is None:
                _calls = _Calls()
    return _calls


def _text(text: str) -> TextBlockParam:
    return {"type": "text", "text": text}


def analyse(payload: dict[str, Any]) -> dict[str, Any]:
    query = str(payload["query"])
    out = _client().call(
        "analysis",
        1024,
        [
            _text(
                f"kind: question\nuser id given: no\n<question>\n{query}\n</question>\n"
                "Call submit_analysis."
            )
        ],
    )
    return {"query": query, "rewrites": out.get("rewrites", []), "llm_calls": 1}


def answer(state: dict[str, Any]) -> dict[str, Any]:
    query = state["query"]
    out = _client().call(
        "generation",
        2048,
        [
            _text(NO_DOCS),
            _text(f"kind: question\n<question>\n{query}\n</question>\nCall submit_answer."),
        ],
    )
    return {**state, "answer": str(out.get("answer", "")), "llm_calls": state["llm_calls"] + 1}


def check(state: dict[str, Any]) -> dict[str, Any]:
    out = _client().call(
        "evaluation",
        1024,
        [
            _text(NO_DOCS),
            _text(
                f"kind: question\n<question>\n{state['query']}\n</question>\n"
                f"<answer>\n{state['answer']}\n</answer>\n<cited_ids>(none)</cited_ids>\n"
                "Call submit_evaluation."
            ),
        ],
    )
    return {
        "status": str(out.get("verdict", "unknown")),
        "answer": state["answer"],
        "usage": {"llm_calls": state["llm_calls"] + 1},
    }


def create_raw_llm_app(redis_url: str, *, store_results: bool = True) -> Celery:
    """The baseline's app; the submitting side passes ``store_results=False``."""
    app = Celery("ragrelay-bench-rawllm", set_as_current=False)
    app.conf.update(
        # As a user must for -P gevent -c 200: kombu's default broker pool of 10 connections
        # loses acks (MaxConnectionsError) when hundreds of tasks finish at once.
        **RedisUrl.parse(redis_url).celery_conf(
            result_backend=store_results, transport_options={"max_connections": 2048}
        ),
        redis_max_connections=2048,
        **chain_conf(RAW_LLM_STAGES, raw_llm_task_name),
    )
    for stage, fn in zip(RAW_LLM_STAGES, (analyse, answer, check), strict=True):
        app.task(name=raw_llm_task_name(stage))(fn)
    return app


def send_llm_chain(app: Celery, query: str, task_id: str) -> None:
    """Send one three-task chain; ``task_id`` is the id of its last task (its result)."""
    sigs = [app.signature(raw_llm_task_name(s), queue=s) for s in RAW_LLM_STAGES]
    sigs[0] = sigs[0].clone(args=({"query": query},))
    chain(*sigs).apply_async(task_id=task_id)

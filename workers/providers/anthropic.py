"""Claude as the LLM of analysis, generation and evaluation, through the official SDK.

One :class:`AnthropicProvider` per worker process (:meth:`AnthropicProvider.from_settings`);
its SDK client is thread-safe and shared by the pool's threads. The SDK's own retries are
off by default (``RAGRELAY_ANTHROPIC_MAX_RETRIES=0``): the task base owns the retry policy,
so SDK errors are translated once, here, into ``TransientError`` (with ``retry_after`` from
``retry-after-ms`` / ``retry-after``) or ``PermanentError``.

Each call forces one tool whose input schema is the stage's output model; the input is
validated with pydantic, and an invalid output is retried once with the validation error
as feedback (a ``tool_result`` with ``is_error``), then the step fails with
:class:`MalformedOutputError`.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anthropic
import httpx2
import structlog
from anthropic.types import Message, MessageParam, TextBlock, TextBlockParam, ToolParam
from pydantic import BaseModel

from bus.errors import ConfigError, PermanentError, StepError, TransientError
from schemas import (
    AnalysisResult,
    AnalysisTask,
    EvaluationResult,
    EvaluationTask,
    GenerationResult,
    GenerationTask,
    StepLimits,
    Usage,
)
from workers.guardrails import citation_problems
from workers.prompts import Prompt, load_prompt
from workers.providers.anthropic_outputs import (
    AnalysisOutput,
    EvaluationOutput,
    GenerationOutput,
    MalformedOutput,
    citations_from,
    clean_rewrites,
    parse_tool_output,
    retry_messages,
)
from workers.providers.anthropic_requests import (
    StageRequest,
    analysis_request,
    contextualize_messages,
    evaluation_request,
    generation_request,
    system_blocks,
)
from workers.providers.pricing import PriceTable
from workers.settings import AnthropicSettings

log = structlog.get_logger("ragrelay.anthropic")
M = TypeVar("M", bound=BaseModel)

API_KEY_HINT = (
    "Set RAGRELAY_ANTHROPIC_API_KEY to a valid Anthropic API key "
    "(https://console.anthropic.com/settings/keys), or unset it to use the offline provider."
)
# Output tokens per call at most, before the job's remaining budget lowers them.
DEFAULT_MAX_OUTPUT_TOKENS: dict[str, int] = {
    "analysis": 1024,
    "generation": 2048,
    "evaluation": 1024,
    "contextualize": 200,
}
MIN_OUTPUT_TOKENS = 64


class MalformedOutputError(PermanentError):
    """The model's output failed validation twice. ``usage`` is what the attempts cost."""

    def __init__(self, message: str, *, usage: Usage) -> None:
        super().__init__(message)
        self.usage = usage


# --- pure helpers ---------------------------------------------------------------------------------


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, else ``retry-after`` as
    seconds or an HTTP date. None when absent or unparseable."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        return max(0.0, email.utils.mktime_tz(parsed) - (time.time() if now is None else now))


def translate_error(exc: anthropic.AnthropicError) -> StepError:
    """The one mapping of SDK errors to ours: what to retry and what not."""
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        detail = exc.api_message or str(exc)
        retry_after = retry_after_seconds(dict(exc.response.headers))
        if status == 429:
            return TransientError(f"Anthropic rate limit (429): {detail}", retry_after=retry_after)
        if status == 529:
            return TransientError(f"Anthropic overloaded (529): {detail}", retry_after=retry_after)
        if status >= 500 or status in (408, 409):
            return TransientError(f"Anthropic error {status}: {detail}", retry_after=retry_after)
        if status == 401:
            return PermanentError(f"Anthropic rejected the API key (401). {API_KEY_HINT}")
        return PermanentError(f"Anthropic refused the request ({status}): {detail}")
    if isinstance(exc, anthropic.APITimeoutError):
        return TransientError("Anthropic request timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return TransientError(f"cannot reach the Anthropic API: {exc}")
    if isinstance(exc, anthropic.APIResponseValidationError):
        return PermanentError(f"unexpected response from the Anthropic API: {exc}")
    return PermanentError(f"Anthropic client error: {exc}")


def sdk_open_telemetry(env: Mapping[str, str]) -> dict[str, Any]:
    """The SDK client's ``open_telemetry`` option: its spans only where someone collects them.

    The SDK opens an OpenTelemetry span per call by default, through the global tracer
    provider even when that is OpenTelemetry's no-op proxy (about 4 % of a call's CPU in the
    profile of docs/benchmarks-speed.md). ragrelay keeps its own trace per job; the SDK's
    spans are kept when a tracer provider is installed (``OTEL_PYTHON_TRACER_PROVIDER`` or
    one set in code before the worker starts) or the SDK's own ``ANTHROPIC_OPEN_TELEMETRY*``
    variables say what to do.
    """
    if any(k.startswith("ANTHROPIC_OPEN_TELEMETRY") for k in env):
        return {}  # the SDK reads them itself
    if env.get("OTEL_PYTHON_TRACER_PROVIDER"):
        return {}
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - the SDK depends on it
        return {}
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return {"open_telemetry": False}
    return {}


class TokenBudgetExceeded(PermanentError):
    """The job has too few tokens left for this call; nothing was sent (nothing spent)."""


def output_tokens_for(stage_cap: int, limits: StepLimits, estimated_input: int) -> int:
    """``max_tokens`` of one call: the stage's cap, lowered to what the job has left."""
    left = limits.max_tokens - estimated_input
    if left < MIN_OUTPUT_TOKENS:
        raise TokenBudgetExceeded(
            f"token budget exhausted: the job has {limits.max_tokens} tokens left, this call "
            f"needs about {estimated_input} input + {MIN_OUTPUT_TOKENS} output"
        )
    return min(stage_cap, left)


@dataclass(frozen=True)
class StageModels:
    analysis: str
    generation: str
    evaluation: str

    def for_stage(self, stage: str) -> str:
        return {
            "analysis": self.analysis,
            "generation": self.generation,
            "evaluation": self.evaluation,
            "contextualize": self.analysis,
        }[stage]

    def distinct(self) -> list[str]:
        return list(dict.fromkeys([self.analysis, self.generation, self.evaluation]))


# --- the provider -------------------------------------------------------------------------------------


class AnthropicProvider:
    """:class:`workers.ports.LLMProvider` on Claude."""

    name = "anthropic"

    def __init__(
        self,
        client: anthropic.Anthropic,
        *,
        models: StageModels,
        prices: PriceTable,
        max_output_tokens: Mapping[str, int] | None = None,
        prompts: Mapping[str, Prompt] | None = None,
        web_enabled: bool = True,
        cache_context: bool = True,
    ) -> None:
        self._client = client
        self.web_enabled = web_enabled
        # Mark the retrieved context as a cache breakpoint. Pays off when the loop re-sends
        # the same context (a revise iteration, a malformed-output retry); a context sent once
        # costs the cache-write premium for nothing (see docs/anthropic.md for measured costs).
        self.cache_context = cache_context
        self.models = models
        self.prices = prices
        self.max_output_tokens = {**DEFAULT_MAX_OUTPUT_TOKENS, **(max_output_tokens or {})}
        self.prompts = dict(prompts or {})
        for stage in ("analysis", "generation", "evaluation", "contextualize"):
            self.prompts.setdefault(stage, load_prompt(stage))
        for model in models.distinct():
            prices.price(model)  # ConfigError now rather than a cost-less call later

    @classmethod
    def from_settings(
        cls,
        settings: AnthropicSettings,
        *,
        prompt_versions: Mapping[str, int] | None = None,
        web_enabled: bool = True,
    ) -> AnthropicProvider:
        """The one provider of a worker process. ``web_enabled=False`` (no web connector
        configured) keeps analysis from routing to the web."""
        key = settings.api_key
        if key is None or not key.get_secret_value().strip():
            raise ConfigError(f"no Anthropic API key. {API_KEY_HINT}")
        client = anthropic.Anthropic(
            api_key=key.get_secret_value().strip(),
            base_url=settings.base_url or None,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            http_client=anthropic.DefaultHttpxClient(
                limits=httpx2.Limits(
                    max_connections=max(1000, settings.keepalive_connections),
                    max_keepalive_connections=settings.keepalive_connections,
                )
            ),
            **sdk_open_telemetry(os.environ),
        )
        return cls(
            client,
            models=StageModels(**settings.models()),
            prices=PriceTable.from_mapping(settings.prices),
            prompts={
                name: load_prompt(name, version)
                for name, version in (prompt_versions or {}).items()
            },
            web_enabled=web_enabled,
            cache_context=settings.cache_context,
        )

    def close(self) -> None:
        self._client.close()

    def prompt_ref(self, stage: str) -> str:
        """What a result of ``stage`` records as its ``prompt_version`` (``name@vN:hash``)."""
        return self.prompts[stage].ref

    # --- start-up check -------------------------------------------------------------------------

    def check(self) -> None:
        """Fail fast at worker start: one 1-token call per configured model.

        401/403 → ``ConfigError`` naming the setting; 404 → ``ConfigError`` naming the model;
        rate limits and outages → ``TransientError`` (the worker may start and retry later).
        Costs about 10 input tokens per model.
        """
        for model in self.models.distinct():
            try:
                self._client.messages.create(
                    model=model,
                    max_tokens=1,
                    messages=[{"role": "user", "content": "ping"}],
                )
            except anthropic.AuthenticationError as exc:
                raise ConfigError(f"Anthropic rejected the API key (401). {API_KEY_HINT}") from exc
            except anthropic.PermissionDeniedError as exc:
                raise ConfigError(
                    f"the Anthropic API key may not use {model!r} (403). "
                    "Set RAGRELAY_ANTHROPIC_API_KEY to a key of a workspace that may, "
                    "or choose another model with RAGRELAY_ANTHROPIC_MODEL_<STAGE>."
                ) from exc
            except anthropic.NotFoundError as exc:
                raise ConfigError(
                    f"Anthropic does not know the model {model!r} (404). Set "
                    "RAGRELAY_ANTHROPIC_MODEL_ANALYSIS/_GENERATION/_EVALUATION to model ids "
                    "your account can use (e.g. claude-haiku-4-5, claude-sonnet-4-6)."
                ) from exc
            except anthropic.BadRequestError as exc:
                raise ConfigError(
                    f"Anthropic rejected the start-up check for {model!r}: {exc}"
                ) from exc
            except anthropic.AnthropicError as exc:
                raise translate_error(exc) from exc

    # --- calls ---------------------------------------------------------------------------------------

    def _usage(self, model: str, response: Message) -> Usage:
        u = response.usage
        return self.prices.usage(
            model,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_read_tokens=u.cache_read_input_tokens or 0,
            cache_write_tokens=u.cache_creation_input_tokens or 0,
        )

    def _create(
        self,
        *,
        model: str,
        max_tokens: int,
        system: list[TextBlockParam],
        messages: list[MessageParam],
        tool: ToolParam | None = None,
    ) -> Message:
        try:
            if tool is None:
                return self._client.messages.create(
                    model=model, max_tokens=max_tokens, system=system, messages=messages
                )
            return self._client.messages.create(
                model=model,
                max_tokens=max_tokens,
                system=system,
                messages=messages,
                tools=[tool],
                tool_choice={
                    "type": "tool",
                    "name": tool["name"],
                    "disable_parallel_tool_use": True,
                },
            )
        except anthropic.AnthropicError as exc:
            raise translate_error(exc) from exc

    def _structured(
        self, req: StageRequest, limits: StepLimits, output: type[M]
    ) -> tuple[M, Usage, str]:
        """Run ``req``; its validated output, the usage of every attempt, and the model id."""
        model = self.models.for_stage(req.stage)
        max_tokens = output_tokens_for(
            self.max_output_tokens[req.stage], limits, req.estimated_input_tokens()
        )
        messages = list(req.messages)
        usage = Usage()
        for attempt in (1, 2):
            response = self._create(
                model=model,
                max_tokens=max_tokens,
                system=req.system,
                messages=messages,
                tool=req.tool,
            )
            usage = usage + self._usage(model, response)
            try:
                return parse_tool_output(response.content, req.tool_name, output), usage, model
            except MalformedOutput as bad:
                log.warning(
                    "llm.malformed_output",
                    stage=req.stage,
                    attempt=attempt,
                    stop_reason=response.stop_reason,
                    error=bad.feedback,
                )
                if attempt == 2:
                    raise MalformedOutputError(
                        f"{req.stage}: the model's output failed validation twice "
                        f"(stop_reason={response.stop_reason}): {bad.feedback}",
                        usage=usage,
                    ) from bad
                messages = retry_messages(messages, response.content, bad)
        raise AssertionError("unreachable")  # pragma: no cover

    def _flagged(self, stage: str, job_id: str, flags: Sequence[str]) -> None:
        if flags:
            log.warning("guardrail.flagged", stage=stage, job_id=job_id, flags=list(flags))

    def analyze(self, task: AnalysisTask) -> AnalysisResult:
        req = analysis_request(task, self.prompts["analysis"])
        out, usage, model = self._structured(req, task.limits, AnalysisOutput)
        sources = [
            s
            for s in dict.fromkeys(out.sources)
            if (s != "user_context" or task.user_id) and (s != "web" or self.web_enabled)
        ]
        if out.needs_retrieval and not sources:
            sources = ["internal"]
        self._flagged("analysis", task.job_id, req.flags)
        notes = " ".join([out.notes.strip(), *(f"[{f}]" for f in req.flags)]).strip()
        is_email = task.kind == "email_reply"
        return AnalysisResult(
            job_id=task.job_id,
            step_id=task.step_id,
            rewrites=clean_rewrites(out.rewrites, task.query),
            sources=sources,
            needs_retrieval=out.needs_retrieval,
            triage=out.triage if is_email else None,
            triage_score=out.triage_score if is_email and out.triage else None,
            notes=notes,
            usage=usage,
            prompt_version=req.prompt.ref,
            model=model,
        )

    def generate(self, task: GenerationTask) -> GenerationResult:
        req = generation_request(task, self.prompts["generation"], cache_context=self.cache_context)
        out, usage, model = self._structured(req, task.limits, GenerationOutput)
        citations, citation_flags = citations_from(out.citations, task.context)
        flags = [*req.flags, *citation_flags]
        if not out.no_answer and task.context and not citations:
            flags.append("no_valid_citations")
        self._flagged("generation", task.job_id, flags)
        extra: dict[str, Any] = {}
        if flags and "notes" in GenerationResult.model_fields:  # once the schema carries notes
            extra["notes"] = " ".join(f"[{f}]" for f in flags)
        return GenerationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            answer=out.answer.strip(),
            short_answer=(out.short_answer or "").strip() or None,
            citations=citations,
            no_answer=out.no_answer,
            usage=usage,
            prompt_version=req.prompt.ref,
            model=model,
            **extra,
        )

    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        req = evaluation_request(task, self.prompts["evaluation"], cache_context=self.cache_context)
        out, usage, model = self._structured(req, task.limits, EvaluationOutput)
        problems = citation_problems(
            task.answer,
            [c.chunk_id for c in task.citations],
            [c.chunk_id for c in task.context],
        )
        verdict = "revise" if problems else out.verdict
        feedback = out.feedback.strip()
        if problems:
            feedback = ("Guardrail: " + "; ".join(problems) + ". " + feedback).strip()
        if req.flags:
            feedback = (feedback + " [guardrail flags: " + ", ".join(req.flags) + "]").strip()
        self._flagged("evaluation", task.job_id, [*problems, *req.flags])
        return EvaluationResult(
            job_id=task.job_id,
            step_id=task.step_id,
            scores={
                "faithfulness": round(out.faithfulness, 4),
                "relevance": round(out.relevance, 4),
                "completeness": round(out.completeness, 4),
            },
            verdict=verdict,
            feedback=feedback,
            suggested_rewrite=(out.suggested_rewrite or "").strip() or None,
            usage=usage,
            prompt_version=req.prompt.ref,
            model=model,
        )

    # --- contextual retrieval at ingestion --------------------------------------------------------

    def contextualize(self, document_text: str, chunk_text: str) -> tuple[str, Usage]:
        """One or two sentences situating ``chunk_text`` in ``document_text``.

        The document is a cached block: the chunks of one document after the first read it
        from the cache (at about a tenth of the input price).
        """
        prompt = self.prompts["contextualize"]
        model = self.models.for_stage("contextualize")
        response = self._create(
            model=model,
            max_tokens=self.max_output_tokens["contextualize"],
            system=system_blocks(prompt),
            messages=contextualize_messages(document_text, chunk_text),
        )
        text = " ".join(
            b.text.strip() for b in response.content if isinstance(b, TextBlock)
        ).strip()
        return text, self._usage(model, response)

    @property
    def contextualize_prompt_version(self) -> str:
        return self.prompts["contextualize"].ref


__all__ = [
    "API_KEY_HINT",
    "AnthropicProvider",
    "MalformedOutputError",
    "StageModels",
    "TokenBudgetExceeded",
    "output_tokens_for",
    "retry_after_seconds",
    "sdk_open_telemetry",
    "translate_error",
]

"""Budget checks: pure functions over a job's budget and usage."""

from __future__ import annotations

from schemas import Budget, StepLimits, Usage

# The most a single LLM call may be asked to produce, whatever the job has left.
MAX_TOKENS_PER_CALL = 4096


def exhausted(budget: Budget, usage: Usage, *, now: float, deadline_at: float) -> str | None:
    """The name of the first limit the job has reached, or None if it may go on."""
    if now >= deadline_at:
        return "deadline"
    if usage.llm_calls >= budget.max_llm_calls:
        return "max_llm_calls"
    if usage.tokens >= budget.max_tokens:
        return "max_tokens"
    if usage.cost_usd >= budget.max_cost_usd:
        return "max_cost_usd"
    return None


def limits_for(budget: Budget, usage: Usage, *, deadline_at: float) -> StepLimits:
    """What a worker may spend on its step: the rest of the job's budget."""
    return StepLimits(
        max_tokens=max(1, min(MAX_TOKENS_PER_CALL, budget.max_tokens - usage.tokens)),
        max_cost_usd=max(0.0, budget.max_cost_usd - usage.cost_usd),
        deadline_at=deadline_at,
    )

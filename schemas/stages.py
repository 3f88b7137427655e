"""The stage registry: one task + result pair per stage, and where each stage runs.

``STAGE_SPECS`` is the one list of stages; queues, task names, models, worker pools, the
LLM stages and the CLI's worker choices derive from it (docs/architecture.md, "Adding a
stage"). Step ids are deterministic: ``job/iteration/stage/shard``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from schemas.base import Message
from schemas.documents import Chunk, Citation, ScoredChunk
from schemas.jobs import JobKind, Usage

Stage = Literal["analysis", "retrieval", "generation", "evaluation"]
Pool = Literal["threads", "prefork", "solo", "gevent"]
Source = Literal["internal", "user_context", "web", "mcp"]
Triage = Literal["spam", "needs_reply", "no_reply"]
# "reread": the answer is a close call; generate again from the same context, reading more
# carefully (no new analysis or retrieval)
Verdict = Literal["accept", "revise", "reread"]


def step_id(job_id: str, iteration: int, stage: str, shard: int = 0) -> str:
    return f"{job_id}/{iteration}/{stage}/{shard}"


class StepLimits(Message):
    """What the job has left, handed to the worker (e.g. to size ``max_tokens``)."""

    max_tokens: int = 4096
    max_cost_usd: float = 1.0
    deadline_at: float = 0.0


class TaskEnvelope(Message):
    """Fields every stage task carries."""

    job_id: str
    step_id: str
    tenant: str
    iteration: int = 1
    attempt: int = 1
    limits: StepLimits = Field(default_factory=StepLimits)


class StageResultBase(Message):
    job_id: str
    step_id: str
    usage: Usage = Field(default_factory=Usage)
    worker_host: str = ""
    worker_pid: int = 0
    started_at: float = 0.0
    ended_at: float = 0.0
    prompt_version: str | None = None
    model: str | None = None


# --- analysis -------------------------------------------------------------------------


class AnalysisTask(TaskEnvelope):
    query: str
    kind: JobKind = "question"
    user_id: str | None = None
    feedback: str | None = None
    previous_rewrites: list[str] = Field(default_factory=list)
    previous_answer: str | None = None
    email: dict[str, str] | None = None  # subject/from/body for email_reply jobs


class AnalysisResult(StageResultBase):
    rewrites: list[str] = Field(min_length=1)
    sources: list[Source] = Field(default_factory=lambda: list[Source](["internal"]))
    needs_retrieval: bool = True
    triage: Triage | None = None
    triage_score: float | None = None
    notes: str = ""


# --- retrieval ------------------------------------------------------------------------


class RetrievalTask(TaskEnvelope):
    query: str
    source: Source = "internal"
    user_id: str | None = None
    k: int = Field(10, ge=1, le=200)


class RetrievalResult(StageResultBase):
    source: Source = "internal"
    query: str = ""
    hits: list[ScoredChunk] = Field(default_factory=list)
    # what the job's result should say about this source (e.g. the tenant holds no
    # documents); the orchestrator adds each once to ``JobResult.degraded``
    notes: list[str] = Field(default_factory=list)


# --- generation -----------------------------------------------------------------------


class GenerationTask(TaskEnvelope):
    query: str
    kind: JobKind = "question"
    context: list[Chunk] = Field(default_factory=list)
    feedback: str | None = None
    email: dict[str, str] | None = None
    reread: bool = False  # the evaluator's "reread" verdict: the same context, read again


class GenerationResult(StageResultBase):
    answer: str
    short_answer: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    no_answer: bool = False
    notes: str = ""  # guardrail flags (dropped citations, injection-looking text)
    # 0-1: how clearly the answer beat the generator's next-best reading (None: not said)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


# --- evaluation -----------------------------------------------------------------------


class EvaluationTask(TaskEnvelope):
    query: str
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    context: list[Chunk] = Field(default_factory=list)
    kind: JobKind = "question"
    is_last_iteration: bool = False
    no_answer: bool = False  # the generator said the context does not answer the question
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)  # the generator's own


class EvaluationResult(StageResultBase):
    scores: dict[str, float] = Field(default_factory=dict)  # faithfulness, relevance, completeness
    verdict: Verdict
    feedback: str = ""
    suggested_rewrite: str | None = None


StageTask = AnalysisTask | RetrievalTask | GenerationTask | EvaluationTask
StageResult = AnalysisResult | RetrievalResult | GenerationResult | EvaluationResult


# --- the registry ---------------------------------------------------------------------


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage: what it is sent, what it answers, and where it runs.

    ``queue`` is the Celery queue its workers consume; the task is ``ragrelay.<name>``.
    ``calls_llm`` marks a stage whose results a replay may reuse and whose workers need a
    provider check at start; ``default_pool`` is the worker pool that measured best for it
    (threads for stages waiting on a model, prefork for CPU-bound embedding; gevent was
    measured against threads and lost: docs/benchmarks-speed.md, "Concurrency model").
    """

    name: str
    task_model: type[TaskEnvelope]
    result_model: type[StageResultBase]
    queue: str
    calls_llm: bool
    default_pool: Pool

    @property
    def task_name(self) -> str:
        return f"ragrelay.{self.name}"


#: Every stage, in pipeline order. Keys are the ``Stage`` literal.
STAGE_SPECS: Mapping[Stage, StageSpec] = {
    "analysis": StageSpec(
        "analysis",
        AnalysisTask,
        AnalysisResult,
        queue="analysis",
        calls_llm=True,
        default_pool="threads",
    ),
    "retrieval": StageSpec(
        "retrieval",
        RetrievalTask,
        RetrievalResult,
        queue="retrieval",
        calls_llm=False,
        default_pool="prefork",
    ),
    "generation": StageSpec(
        "generation",
        GenerationTask,
        GenerationResult,
        queue="generation",
        calls_llm=True,
        default_pool="threads",
    ),
    "evaluation": StageSpec(
        "evaluation",
        EvaluationTask,
        EvaluationResult,
        queue="evaluation",
        calls_llm=True,
        default_pool="threads",
    ),
}

TASK_MODELS: Mapping[str, type[TaskEnvelope]] = {
    name: spec.task_model for name, spec in STAGE_SPECS.items()
}
RESULT_MODELS: Mapping[str, type[StageResultBase]] = {
    name: spec.result_model for name, spec in STAGE_SPECS.items()
}

"""The interfaces workers depend on. Adapters implement them; handlers see only these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from schemas import (
    AnalysisResult,
    AnalysisTask,
    Chunk,
    EvaluationResult,
    EvaluationTask,
    GenerationResult,
    GenerationTask,
    ScoredChunk,
)

Vector = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit-length vectors. ``name`` identifies the model (stored with vectors)."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> Vector:  # shape (len(texts), dim), float32
        ...


@runtime_checkable
class DocumentStore(Protocol):
    """A per-tenant chunk store with search. Tenants never see each other's chunks.

    ``upsert`` is idempotent by ``chunk_id``; ``search`` returns best first.
    ``filters`` match chunk metadata keys exactly (plus ``doc_id`` and ``source``).
    """

    def upsert(self, tenant: str, chunks: Sequence[Chunk]) -> int: ...

    def delete_documents(self, tenant: str, doc_ids: Sequence[str]) -> int: ...

    def search(
        self,
        tenant: str,
        query: str,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
    ) -> list[ScoredChunk]: ...

    def count(self, tenant: str) -> int: ...

    def close(self) -> None: ...


@runtime_checkable
class LLMProvider(Protocol):
    """Does the three language jobs. The offline provider and the Anthropic one both fit.

    Each returns the stage's result model with ``usage``, ``model`` and ``prompt_version`` set;
    the caller fills in job/step ids and timing.
    """

    name: str

    def analyze(self, task: AnalysisTask) -> AnalysisResult: ...

    def generate(self, task: GenerationTask) -> GenerationResult: ...

    def evaluate(self, task: EvaluationTask) -> EvaluationResult: ...

    def check(self) -> None:
        """Fail at worker start (``ConfigError``), not in the first task: key, models, prices."""

    def close(self) -> None:
        """Release the provider's connections."""


class NullLifecycle:
    """``check`` and ``close`` for a provider with nothing to check or release."""

    def check(self) -> None:
        return None

    def close(self) -> None:
        return None


@runtime_checkable
class UserContextStore(Protocol):
    """Real-time user data other services write (``PUT /v1/users/{id}/context``)."""

    def get(self, tenant: str, user_id: str) -> dict[str, Any] | None: ...

    def put(self, tenant: str, user_id: str, context: Mapping[str, Any]) -> None: ...


@runtime_checkable
class WebSource(Protocol):
    """A web search connector. ``enabled`` False means the source is skipped."""

    enabled: bool

    def search(self, query: str, k: int = 5) -> list[ScoredChunk]: ...


class McpSources(Protocol):
    """A tenant's MCP servers as one retrieval source (``workers/mcp_sources/``)."""

    def routes(self, tenant: str, query: str) -> bool:
        """Whether ``tenant`` has an MCP server this question should be asked of."""
        ...

    def search(
        self, tenant: str, query: str, k: int, *, deadline_at: float | None = None
    ) -> tuple[list[ScoredChunk], list[str]]:
        """Chunks from the tenant's servers, and what failed (each server time-boxed)."""
        ...


class NoMcpSources:
    """No tenant has MCP sources (``RAGRELAY_MCP_SOURCES`` unset)."""

    def routes(self, tenant: str, query: str) -> bool:
        return False

    def search(
        self, tenant: str, query: str, k: int, *, deadline_at: float | None = None
    ) -> tuple[list[ScoredChunk], list[str]]:
        return [], []


class Faults(Protocol):
    """Injected faults around a handler (chaos and integration tests; ``workers/faults.py``)."""

    def before(self, stage: str, msg: Any) -> None: ...

    def after(self, stage: str, result: Any) -> Any: ...


@dataclass
class Deps:
    """Everything a stage handler may use. Built once per worker process."""

    provider: LLMProvider
    store: DocumentStore
    user_context: UserContextStore
    web: WebSource
    faults: Faults | None = None  # set only by RAGRELAY_FAULTS
    mcp: McpSources = field(default_factory=NoMcpSources)  # RAGRELAY_MCP_SOURCES

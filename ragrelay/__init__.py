"""ragrelay: agentic RAG as a distributed pipeline on Celery + Redis.

The door for a Python service::

    from ragrelay import Client, JobRequest, Budget

    client = Client()  # settings from RAGRELAY_* (embedded without RAGRELAY_REDIS_URL)
    result = client.ask(JobRequest(query="...", tenant="acme", budget=Budget(max_iterations=2)))

This package holds the edges users meet (the CLI, this client, the HTTP gateway, the email
agent, observability pages, evals, benchmarks) and the one composition root, the CLI.
``import ragrelay`` stays light: the client (Celery, Redis) loads on first use of ``Client``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from schemas import Budget, JobRequest, JobResult

if TYPE_CHECKING:
    from ragrelay.client import JobTimeout
    from ragrelay.client import RagrelayClient as Client

__all__ = ["Budget", "Client", "JobRequest", "JobResult", "JobTimeout"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "JobTimeout"):
        from ragrelay import client

        return client.RagrelayClient if name == "Client" else client.JobTimeout
    raise AttributeError(f"module 'ragrelay' has no attribute {name!r}")

"""Web search connectors. The default is disabled: no web unless configured.

``SearxngWeb`` queries a self-hosted SearXNG instance's JSON API (``RAGRELAY_WEB_SEARCH_URL``,
e.g. ``http://searxng:8080``; the instance must allow ``format=json``). Results become
chunks whose citation is their URL. Every call is time-boxed (``RAGRELAY_WEB_TIMEOUT_S``) so
a slow web never stalls a job: a timeout or a bad answer is a ``TransientError`` (the shard
is retried, then degrades the job), never a crash.
"""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from bus.errors import PermanentError, TransientError
from schemas import Chunk, ScoredChunk


class DisabledWeb:
    enabled = False

    def search(self, query: str, k: int = 5) -> list[ScoredChunk]:
        return []


class SearxngWeb:
    enabled = True

    def __init__(
        self, base_url: str, *, timeout_s: float = 3.0, client: httpx.Client | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.client = client or httpx.Client(timeout=httpx.Timeout(timeout_s))

    def search(self, query: str, k: int = 5) -> list[ScoredChunk]:
        try:
            response = self.client.get(
                f"{self.base_url}/search",
                params={"q": query, "format": "json"},
                timeout=self.timeout_s,
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"web search timed out after {self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"web search unreachable: {exc}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(
                f"web search answered {response.status_code}", retry_after=_retry_after(response)
            )
        if response.status_code >= 400:
            raise PermanentError(
                f"web search answered {response.status_code} (is format=json enabled "
                "in the SearXNG settings?)"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError("web search answered something that is not JSON") from exc
        return normalise_results(body, k)


def normalise_results(body: Any, k: int) -> list[ScoredChunk]:
    """SearXNG's ``results`` as chunks (title, content, URL as citation), best first."""
    rows = body.get("results") if isinstance(body, dict) else None
    hits: list[ScoredChunk] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        url = row.get("url")
        text = str(row.get("content") or "").strip()
        if not isinstance(url, str) or not url or not text:
            continue
        doc_id = "web:" + hashlib.sha256(url.encode()).hexdigest()[:16]
        chunk = Chunk(
            chunk_id=f"{doc_id}#0",
            doc_id=doc_id,
            title=str(row.get("title") or url),
            text=text,
            source="web",
            metadata={"url": url},
        )
        score = row.get("score")
        hits.append(
            ScoredChunk(
                chunk=chunk,
                score=float(score) if isinstance(score, int | float) else 1.0 / (len(hits) + 1),
                rank=len(hits) + 1,
                retriever="searxng",
            )
        )
        if len(hits) == k:
            break
    return hits


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None

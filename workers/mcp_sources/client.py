"""Ask a tenant's MCP servers (``config.py``) for a question's context, time-boxed.

Each call opens a fresh session (a subprocess for stdio, a connection for HTTP), calls the
configured tool or reads the configured resource, and closes it: nothing is cached, so
nothing one tenant's call received can reach another's. The servers of one call are asked
concurrently, each within its ``timeout_s`` and within what is left of the job's deadline;
one that fails, times out or answers an error is left out and named in the notes returned
(``RetrievalResult.notes``, then the job's ``degraded``): a slow or broken server degrades
the job (the trace says which, and why) and never stalls it.
"""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import anyio

from schemas import ScoredChunk
from workers.mcp_sources.config import McpSourceConfig, McpSourcesFile
from workers.mcp_sources.normalise import Piece, to_chunks

if TYPE_CHECKING:
    from mcp.types import CallToolResult, ReadResourceResult

GRACE_S = 5.0  # closing a session (stopping its subprocess) after a timeout


class SourceFailed(Exception):
    """One server gave nothing usable: the reason is recorded, the others still answer."""


class McpServers:
    """A tenant's MCP servers as one retrieval source (``Deps.mcp``)."""

    def __init__(self, config: McpSourcesFile) -> None:
        self.config = config

    def routes(self, tenant: str, query: str) -> bool:
        return any(s.routes(query) for s in self.config.for_tenant(tenant))

    def search(
        self, tenant: str, query: str, k: int, *, deadline_at: float | None = None
    ) -> tuple[list[ScoredChunk], list[str]]:
        sources = [s for s in self.config.for_tenant(tenant) if s.routes(query)]
        if not sources:
            return [], []
        left = None if not deadline_at else deadline_at - time.time()
        if left is not None and left <= 0:
            return [], [f"mcp:{s.name}: skipped, the job's deadline has passed" for s in sources]
        return anyio.run(_ask_all, sources, query, k, left)


async def _ask_all(
    sources: list[McpSourceConfig], query: str, k: int, left_s: float | None
) -> tuple[list[ScoredChunk], list[str]]:
    answers: dict[str, list[ScoredChunk]] = {}
    degraded: list[str] = []

    async def one(source: McpSourceConfig) -> None:
        timeout = source.timeout_s if left_s is None else min(source.timeout_s, left_s)
        started = time.monotonic()
        try:
            with anyio.move_on_after(timeout + GRACE_S) as outer:
                answers[source.name] = await ask(source, query, timeout)
            if outer.cancelled_caught:
                raise SourceFailed(f"did not close within {timeout + GRACE_S:g} s")
        except TimeoutError:
            degraded.append(f"mcp:{source.name}: timed out after {timeout:g} s")
        except SourceFailed as exc:
            degraded.append(f"mcp:{source.name}: {exc}")
        # The boundary with a foreign server: whatever it does (a crash, a refused spawn, a
        # protocol error, an HTTP error) must degrade this job, never fail it.
        except Exception as exc:
            took = time.monotonic() - started
            degraded.append(f"mcp:{source.name}: {_describe(exc)} (after {took:.1f} s)")

    async with anyio.create_task_group() as group:
        for source in sources:
            group.start_soon(one, source)
    return _interleave([answers[s.name] for s in sources if s.name in answers], k), degraded


async def ask(source: McpSourceConfig, query: str, timeout_s: float) -> list[ScoredChunk]:
    """One server's chunks for ``query``; ``TimeoutError`` after ``timeout_s`` (connect and
    call together), ``SourceFailed`` when it answers with an error."""
    from mcp import Client

    called: CallToolResult | None = None
    read: ReadResourceResult | None = None
    with anyio.fail_after(timeout_s):
        async with AsyncExitStack() as stack:
            transport = await _transport(source, stack)
            c = await stack.enter_async_context(
                Client(transport, cache=None, read_timeout_seconds=timeout_s)
            )
            if source.tool is not None:
                called = await c.call_tool(source.tool, source.arguments_for(query))
            else:
                read = await c.read_resource(source.resource or "")
    # judged after the session closed: raised inside it, SourceFailed would reach us wrapped
    # in the SDK's task-group ExceptionGroup
    pieces = tool_pieces(called) if called is not None else resource_pieces(read)
    return to_chunks(source.name, source.target, pieces, query, source.max_chunks)


async def _transport(source: McpSourceConfig, stack: AsyncExitStack) -> Any:
    """What ``mcp.Client`` connects through; an HTTP client is closed with ``stack``."""
    if source.url is not None:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        http = await stack.enter_async_context(
            httpx2.AsyncClient(headers=source.headers, timeout=source.timeout_s)
        )
        return streamable_http_client(source.url, http_client=http)
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=source.command or "", args=source.args, env=source.env, cwd=source.cwd
    )


def tool_pieces(result: CallToolResult) -> list[Piece]:
    """The text a tool answered (text blocks, embedded text resources; structured content
    when there is no text); ``SourceFailed`` if the tool answered an error."""
    from mcp.types import EmbeddedResource, ResourceLink, TextContent, TextResourceContents

    texts = [b.text for b in result.content if isinstance(b, TextContent)]
    if result.is_error:
        raise SourceFailed("the tool answered an error: " + " ".join(texts)[:300])
    pieces: list[Piece] = []
    for block in result.content:
        if isinstance(block, TextContent) and block.text.strip():
            pieces.append(Piece(block.text))
        elif isinstance(block, EmbeddedResource) and isinstance(
            block.resource, TextResourceContents
        ):
            pieces.append(Piece(block.resource.text, uri=str(block.resource.uri)))
        elif isinstance(block, ResourceLink) and block.description:
            pieces.append(Piece(block.description, uri=str(block.uri), name=block.name))
    if not pieces and result.structured_content is not None:
        pieces.append(Piece(json.dumps(result.structured_content, ensure_ascii=False)))
    return pieces


def resource_pieces(result: ReadResourceResult | None) -> list[Piece]:
    from mcp.types import TextResourceContents

    if result is None:
        return []
    return [
        Piece(c.text, uri=str(c.uri))
        for c in result.contents
        if isinstance(c, TextResourceContents) and c.text.strip()
    ]


def _interleave(lists: list[list[ScoredChunk]], k: int) -> list[ScoredChunk]:
    """Each server's best first, then each one's second, ...: no server drowns the others."""
    out: list[ScoredChunk] = []
    for depth in range(max((len(x) for x in lists), default=0)):
        out.extend(x[depth] for x in lists if depth < len(x))
    return [h.model_copy(update={"rank": i}) for i, h in enumerate(out[:k], start=1)]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__

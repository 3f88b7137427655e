"""A loopback HTTP server that speaks enough of Anthropic's Messages API for the real SDK.

Honest about what it is: a test double, not a model. It answers ``POST /v1/messages``

- with a forced tool call (``tool_choice={"type": "tool", ...}``) whose input it builds from
  the request: the analysis tool gets rewrites of the ``<question>``, the answer tool an
  extractive answer from the fenced ``<document id=...>`` blocks with their ids cited, the
  evaluation tool scores that check the cited ids against the documents; any other tool an
  instance made from its input schema;
- with plain text otherwise (a context sentence for ``<chunk>`` requests);
- with ``usage`` including prompt-cache fields: it remembers every prefix ending at a
  ``cache_control`` breakpoint (per model) and reports a later identical prefix as
  ``cache_read_input_tokens``, a new one as ``cache_creation_input_tokens``. Tokens are
  counted as ``ceil(chars / 4)``, not with Claude's tokenizer; there is no TTL, and no
  minimum cacheable length unless given (``min_cache_tokens``, e.g.
  :data:`DOCUMENTED_CACHE_MINIMUMS`).

Tests script replies (:meth:`FakeAnthropicServer.enqueue`): a given tool input, a malformed
one, text instead of a tool call, 429 with ``retry-after``/``retry-after-ms``, 529, 500, 401,
a slow reply. Every request is recorded for assertions. Auth: ``x-api-key`` or
``Authorization: Bearer``.

Standalone (a local cluster demo, the latency benchmark)::

    python -m tests.fakes.anthropic_server --port 8765 --delay-ms 300
"""

from __future__ import annotations

import argparse
import hashlib
import html
import itertools
import json
import math
import re
import signal
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from schemas import Chunk
from workers.text.extractive import extract_answer
from workers.text.rewrite import keyword_query

CHARS_PER_TOKEN = 4
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
# Shortest cacheable prefix per model, as Anthropic's prompt-caching docs list them (2026).
DOCUMENTED_CACHE_MINIMUMS: dict[str, int] = {
    "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 1024,
    "claude-sonnet-4-5": 1024,
    "claude-opus-4-6": 4096,
    "claude-opus-4-5": 4096,
}
_DOC = re.compile(r'<document id="([^"]*)"[^>]*>\n(.*?)\n</document>', re.DOTALL)
_SPAM = re.compile(r"\b(winner|lottery|unsubscribe|viagra|crypto giveaway|click here)\b", re.I)


def tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


# --- scripted replies -------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer. ``status`` 200 with ``tool_input`` / ``text`` / ``body``, or an error."""

    status: int = 200
    tool_input: dict[str, Any] | None = None
    text: str | None = None
    body: dict[str, Any] | None = None  # a whole response body, sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: dict[str, int] | None = None  # override the computed usage

    @classmethod
    def error(
        cls, status: int, message: str = "", headers: Mapping[str, str] | None = None
    ) -> Reply:
        kind = ERROR_TYPES.get(status, "api_error")
        return cls(
            status=status,
            body={"type": "error", "error": {"type": kind, "message": message or kind}},
            headers=dict(headers or {}),
        )

    @classmethod
    def rate_limited(
        cls, retry_after: float | None = None, *, retry_after_ms: float | None = None
    ) -> Reply:
        headers = {}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = f"{retry_after_ms:g}"
        return cls.error(429, "Number of request tokens has exceeded your rate limit.", headers)

    @classmethod
    def overloaded(cls) -> Reply:
        return cls.error(529, "Overloaded")

    @classmethod
    def server_error(cls) -> Reply:
        return cls.error(500, "Internal server error")

    @classmethod
    def unauthorized(cls) -> Reply:
        return cls.error(401, "invalid x-api-key")

    @classmethod
    def malformed(cls, tool_input: dict[str, Any] | None = None) -> Reply:
        """A tool call whose input does not match the schema (default: an empty object)."""
        return cls(tool_input=tool_input if tool_input is not None else {"unexpected": True})

    @classmethod
    def no_tool_call(cls, text: str = "I would rather answer in prose.") -> Reply:
        return cls(text=text)

    @classmethod
    def slow(cls, seconds: float) -> Reply:
        """The default answer, after ``seconds``."""
        return cls(delay_s=seconds)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any
    status: int | None = None  # what the server answered, once it has
    response: Any = None

    @property
    def tool_name(self) -> str | None:
        if isinstance(self.body, dict):
            choice = self.body.get("tool_choice") or {}
            if choice.get("type") == "tool":
                return str(choice.get("name"))
        return None

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None


# --- request reading ------------------------------------------------------------------------------


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _block_text(block: Mapping[str, Any]) -> str:
    if block.get("type") == "text":
        return str(block.get("text", ""))
    if block.get("type") == "tool_result":
        inner = block.get("content", "")
        return inner if isinstance(inner, str) else " ".join(_block_text(b) for b in _blocks(inner))
    return json.dumps(block, sort_keys=True)


def user_text(body: Mapping[str, Any]) -> str:
    """The text of every user turn, in order."""
    return "\n".join(
        _block_text(b)
        for m in body.get("messages", [])
        if m.get("role") == "user"
        for b in _blocks(m.get("content"))
    )


def _tag(text: str, name: str) -> str:
    match = re.search(rf"<{name}>\n?(.*?)\n?</{name}>", text, re.DOTALL)
    return html.unescape(match.group(1)).strip() if match else ""


def documents(text: str) -> list[Chunk]:
    """The chunks fenced as ``<document id="...">`` in a request."""
    return [
        Chunk(
            chunk_id=html.unescape(cid),
            doc_id=html.unescape(cid).split("#")[0],
            text=html.unescape(body),
        )
        for cid, body in _DOC.findall(text)
    ]


def prefix_segments(body: Mapping[str, Any]) -> Iterator[tuple[str, bool]]:
    """The request in cache order (tools, system, messages) as (canonical text, breakpoint)."""
    for tool in body.get("tools") or []:
        tool = dict(tool)
        marked = tool.pop("cache_control", None) is not None
        yield json.dumps(tool, sort_keys=True), marked
    system = body.get("system") or []
    for block in _blocks(system):
        block = dict(block)
        marked = block.pop("cache_control", None) is not None
        yield json.dumps(block, sort_keys=True), marked
    for message in body.get("messages", []):
        for block in _blocks(message.get("content")):
            block = dict(block)
            marked = block.pop("cache_control", None) is not None
            yield message.get("role", "") + json.dumps(block, sort_keys=True), marked


# --- default outputs ----------------------------------------------------------------------------------


def _instance(schema: Mapping[str, Any]) -> Any:
    """A minimal valid instance of a JSON schema (objects, arrays, scalars, anyOf, enum)."""
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    if "anyOf" in schema:
        return _instance(schema["anyOf"][0])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _instance(props[k]) for k in schema.get("required", []) if k in props}
    if kind == "array":
        return [_instance(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind in ("number", "integer"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def default_tool_input(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    text = user_text(body)
    question = _tag(text, "question")
    if name == "submit_analysis":
        rewrites = [question or "question"]
        keywords = keyword_query(question)
        if keywords and keywords.lower() != question.lower():
            rewrites.append(keywords)
        feedback = _tag(text, "feedback")
        if feedback:
            rewrites.append(f"{keywords or question} {keyword_query(feedback)}".strip())
        out: dict[str, Any] = {
            "rewrites": rewrites,
            "sources": ["internal"],
            "needs_retrieval": True,
            "notes": "fake analysis: internal documents",
        }
        if "kind: email_reply" in text:
            email = _tag(text, "email")
            out["triage"] = "spam" if _SPAM.search(email) else "needs_reply"
            out["triage_score"] = 0.9
        return out
    if name == "submit_answer":
        chunks = documents(text)
        extract = extract_answer(question, chunks)
        if not extract.answer:
            return {
                "answer": "The documents do not contain the answer.",
                "citations": [],
                "no_answer": True,
            }
        return {
            "answer": extract.answer,
            "short_answer": None,
            "citations": [{"chunk_id": cid, "quote": q[:200]} for cid, q in extract.quotes],
            "no_answer": False,
        }
    if name == "submit_evaluation":
        ids = {c.chunk_id for c in documents(text)}
        cited = [c.strip() for c in _tag(text, "cited_ids").split(",") if c.strip()]
        cited = [c for c in cited if c != "(none)"]
        answer = _tag(text, "answer")
        grounded = bool(answer) and bool(cited) and all(c in ids for c in cited)
        faithfulness = 0.95 if grounded else 0.3
        return {
            "faithfulness": faithfulness,
            "relevance": 0.9,
            "completeness": 0.85 if grounded else 0.4,
            "verdict": "accept" if grounded else "revise",
            "feedback": "" if grounded else "Cite the documents that support the answer.",
            "suggested_rewrite": None if grounded else question,
        }
    for tool in body.get("tools") or []:
        if tool.get("name") == name:
            value = _instance(tool.get("input_schema", {"type": "object"}))
            return value if isinstance(value, dict) else {}
    return {}


def default_text(body: Mapping[str, Any]) -> str:
    text = user_text(body)
    chunk = _tag(text, "chunk")
    if chunk:
        document = _tag(text, "document")
        first = document.split(".")[0][:120].strip()
        return f"This chunk is from a document that begins: {first}."
    fmt = ((body.get("output_config") or {}).get("format")) or {}
    if fmt.get("type") == "json_schema":
        return json.dumps(_instance(fmt.get("schema", {"type": "object"})))
    return "pong"


# --- the server ----------------------------------------------------------------------------------------


class _Httpd(ThreadingHTTPServer):
    # A real API accepts hundreds of new connections at once. socketserver's listen backlog
    # of 5 dropped SYNs at 200 calls in flight: 1 s client retransmits, or resets that the
    # latency benchmark counted as failed calls.
    request_queue_size = 1024
    daemon_threads = True


class FakeAnthropicServer:
    """A threaded HTTP server on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        delay_s: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        min_cache_tokens: Mapping[str, int] | None = None,
    ) -> None:
        self.api_key = api_key
        self.delay_s = delay_s
        # Model id prefix -> the shortest prefix (tokens) the API caches; default: any length.
        self.min_cache_tokens = dict(min_cache_tokens or {})
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._by_tool: dict[str, deque[Reply]] = {}
        self._cache: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd = _Httpd((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    # --- lifecycle
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        host = str(self._httpd.server_address[0])
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{self.port}"

    def start(self) -> FakeAnthropicServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-anthropic",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting and inspection
    def enqueue(self, *replies: Reply, tool: str | None = None) -> None:
        """Replies for the next requests, in order; with ``tool``, only for calls forcing it."""
        with self._lock:
            target = self._queue if tool is None else self._by_tool.setdefault(tool, deque())
            target.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._queue.clear()
            self._by_tool.clear()
            self._cache.clear()

    def message_requests(self, tool: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            found = [r for r in self.requests if r.path == "/v1/messages"]
        return [r for r in found if tool is None or r.tool_name == tool]

    # --- request handling (called from handler threads)
    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next_reply(self, tool: str | None) -> Reply | None:
        with self._lock:
            if tool is not None and self._by_tool.get(tool):
                return self._by_tool[tool].popleft()
            return self._queue.popleft() if self._queue else None

    def authorised(self, headers: Mapping[str, str]) -> bool:
        if self.api_key is None:
            return True
        bearer = headers.get("authorization", "")
        return headers.get("x-api-key") == self.api_key or bearer == f"Bearer {self.api_key}"

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def minimum_cacheable(self, model: str) -> int:
        found = [m for m in self.min_cache_tokens if model == m or model.startswith(m + "-")]
        return self.min_cache_tokens[max(found, key=len)] if found else 0

    def usage_for(self, body: Mapping[str, Any], output_tokens: int) -> dict[str, int]:
        """Input tokens split into uncached / cache read / cache write, like the API does."""
        model = str(body.get("model", ""))
        total = 0
        digest = hashlib.sha256()
        breakpoints: list[tuple[str, int]] = []
        for text, marked in prefix_segments(body):
            total += tokens(text)
            digest.update(text.encode())
            if marked and total >= self.minimum_cacheable(model):
                breakpoints.append((digest.hexdigest(), total))
        read = 0
        with self._lock:
            for key, size in breakpoints:
                if (model, key) in self._cache:
                    read = max(read, size)
            written = 0
            if breakpoints and breakpoints[-1][1] > read:
                written = breakpoints[-1][1] - read
            for key, _ in breakpoints:
                self._cache.add((model, key))
        return {
            "input_tokens": total - read - written,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written,
        }

    def respond(
        self, body: Mapping[str, Any], tool: str | None, reply: Reply | None
    ) -> tuple[int, dict[str, Any]]:
        reply = reply or Reply()
        if reply.status != 200 or reply.body is not None:
            return reply.status, reply.body or {}
        content: list[dict[str, Any]]
        if reply.text is not None:
            content = [{"type": "text", "text": reply.text}]
            stop = "end_turn"
        elif tool is not None:
            tool_input = (
                reply.tool_input
                if reply.tool_input is not None
                else default_tool_input(str(tool), body)
            )
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{next(self._ids):06d}",
                    "name": tool,
                    "input": tool_input,
                }
            ]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": default_text(body)}]
            stop = "end_turn"
        out_tokens = tokens(json.dumps([c.get("input", c.get("text")) for c in content]))
        max_tokens = int(body.get("max_tokens", 4096))
        if out_tokens > max_tokens:  # truncated, as the API would
            out_tokens = max_tokens
            stop = "max_tokens"
            if content[0]["type"] == "text":
                content[0]["text"] = content[0]["text"][: max_tokens * CHARS_PER_TOKEN]
            else:
                content[0]["input"] = {}
        usage = reply.usage or self.usage_for(body, out_tokens)
        return 200, {
            "id": f"msg_fake_{next(self._ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-fake"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }


def _handler_for(server: FakeAnthropicServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: Any, headers: Mapping[str, str] = {}) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_fake_{next(server._ids):06d}")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                self.close_connection = True

        def _read(self) -> RecordedRequest:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in self.headers.items()}
            request = RecordedRequest(self.command, self.path.split("?")[0], headers, body)
            server._record(request)
            return request

        def do_GET(self) -> None:
            request = self._read()
            if not server.authorised(request.headers):
                self._send(401, Reply.unauthorized().body)
                return
            if request.path == "/v1/models":
                self._send(200, {"data": [], "has_more": False, "first_id": None, "last_id": None})
            elif request.path.startswith("/v1/models/"):
                model = request.path.rsplit("/", 1)[-1]
                self._send(
                    200,
                    {
                        "type": "model",
                        "id": model,
                        "display_name": model,
                        "created_at": "2026-01-01T00:00:00Z",
                    },
                )
            else:
                self._send(404, Reply.error(404, f"no route {request.path}").body)

        def do_POST(self) -> None:
            request = self._read()
            if request.path != "/v1/messages":
                self._send(404, Reply.error(404, f"no route {request.path}").body)
                return
            if not server.authorised(request.headers):
                self._send(401, Reply.unauthorized().body)
                return
            if not isinstance(request.body, dict) or "messages" not in request.body:
                self._send(400, Reply.error(400, "messages: field required").body)
                return
            reply = server._next_reply(request.tool_name)
            server.sleep(server.delay_s + (reply.delay_s if reply else 0.0))
            status, payload = server.respond(request.body, request.tool_name, reply)
            request.status, request.response = status, payload
            self._send(status, payload, reply.headers if reply else {})

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A loopback Anthropic Messages API for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added to every reply")
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    parser.add_argument(
        "--cache-minimums",
        action="store_true",
        help="cache only prefixes as long as the API's documented minimums",
    )
    args = parser.parse_args(argv)
    server = FakeAnthropicServer(
        api_key=args.api_key,
        delay_s=args.delay_ms / 1000.0,
        host=args.host,
        port=args.port,
        min_cache_tokens=DOCUMENTED_CACHE_MINIMUMS if args.cache_minimums else None,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(f"fake Anthropic API on {server.base_url} (delay {args.delay_ms:g} ms)", flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

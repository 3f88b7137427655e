"""The SearXNG web connector against a loopback server speaking its JSON search API."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bus.errors import PermanentError, TransientError
from workers.web import SearxngWeb

CORPUS = Path(__file__).resolve().parents[2] / "ragrelay" / "sample" / "corpus.jsonl"

RESULTS = [
    {
        "url": "https://example.org/release",
        "title": "ragrelay 2.0 released",
        "content": "The latest ragrelay release adds streaming traces and web search.",
        "score": 3.5,
    },
    {"url": "https://example.org/empty", "title": "no content", "content": ""},
    {
        "url": "https://example.org/notes",
        "title": "Release notes",
        "content": "Today the team shipped faster fan-in for retrieval shards.",
    },
]


class SearxngStub(BaseHTTPRequestHandler):
    mode = "ok"
    queries: list[str] = []

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        params = parse_qs(url.query)
        if url.path != "/search" or params.get("format") != ["json"]:
            self._send(404, {"error": "not found"})
            return
        type(self).queries.append(params.get("q", [""])[0])
        if self.mode == "slow":
            time.sleep(2.0)
        if self.mode == "forbidden":
            self._send(403, {"error": "format json disabled"})
            return
        if self.mode == "garbage":
            self._send_raw(200, b"<html>not json</html>")
            return
        self._send(200, {"query": params.get("q", [""])[0], "results": RESULTS})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        self._send_raw(status, json.dumps(body).encode())

    def _send_raw(self, status: int, raw: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def searxng() -> Iterator[str]:
    SearxngStub.mode = "ok"
    SearxngStub.queries = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SearxngStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_results_become_chunks_cited_by_their_url(searxng: str) -> None:
    web = SearxngWeb(searxng, timeout_s=2.0)
    hits = web.search("latest ragrelay release", k=5)
    assert [h.chunk.metadata["url"] for h in hits] == [
        "https://example.org/release",
        "https://example.org/notes",
    ]  # empty content skipped
    assert all(h.chunk.source == "web" for h in hits)
    assert SearxngStub.queries == ["latest ragrelay release"]
    assert len(web.search("q", k=1)) == 1


def test_a_slow_web_is_time_boxed_and_transient(searxng: str) -> None:
    SearxngStub.mode = "slow"
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        SearxngWeb(searxng, timeout_s=0.3).search("q")
    assert time.monotonic() - started < 1.5


def test_refusal_is_permanent_and_garbage_is_transient(searxng: str) -> None:
    SearxngStub.mode = "forbidden"
    with pytest.raises(PermanentError, match="403"):
        SearxngWeb(searxng).search("q")
    SearxngStub.mode = "garbage"
    with pytest.raises(TransientError, match="not JSON"):
        SearxngWeb(searxng).search("q")


def test_a_job_about_recent_events_cites_the_web(searxng: str, base_env: dict[str, str]) -> None:
    env = dict(base_env, RAGRELAY_WEB_SEARCH_URL=searxng)
    run = [sys.executable, "-m", "ragrelay"]
    ingest = subprocess.run(
        [*run, "ingest", str(CORPUS)], env=env, capture_output=True, text=True, timeout=120
    )
    assert ingest.returncode == 0, ingest.stderr
    out = subprocess.run(
        [*run, "ask", "--json", "What is the latest ragrelay release?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    sources = [
        e["detail"]["source"]
        for e in result["trace"]
        if e["type"] == "step.completed" and e["stage"] == "retrieval"
    ]
    assert "web" in sources
    assert any(c.get("url") == "https://example.org/release" for c in result["citations"])

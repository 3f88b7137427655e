"""Whole jobs through the embedded pipeline with Claude-shaped calls to the loopback API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_job_cost import REVISE
from tests.fakes.anthropic_server import FakeAnthropicServer, Reply
from workers.prompts import load_prompt

# Each test runs `ragrelay ask --json` in its own process, as a user would.
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "ragrelay" / "sample" / "corpus.jsonl"
PRICES = {
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_read": 0.10, "cache_write": 1.25},
    "claude-sonnet-4-6": {"input": 3.0, "output": 15.0, "cache_read": 0.30, "cache_write": 3.75},
}
QUESTION = "How does ragrelay stop a job that loops?"


@pytest.fixture
def server() -> Iterator[FakeAnthropicServer]:
    with FakeAnthropicServer(api_key="fake-key") as srv:
        yield srv


@pytest.fixture
def cli_env(
    server: FakeAnthropicServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = {
        "RAGRELAY_DATA_DIR": str(tmp_path),
        "RAGRELAY_ANTHROPIC_API_KEY": "fake-key",
        "RAGRELAY_ANTHROPIC_BASE_URL": server.base_url,
        "RAGRELAY_ANTHROPIC_MODEL_ANALYSIS": "claude-haiku-4-5",
        "RAGRELAY_ANTHROPIC_MODEL_GENERATION": "claude-sonnet-4-6",
        "RAGRELAY_ANTHROPIC_MODEL_EVALUATION": "claude-haiku-4-5",
        "RAGRELAY_ANTHROPIC_PRICES": json.dumps(PRICES),
        "RAGRELAY_LOG_LEVEL": "ERROR",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAGRELAY_REDIS_URL", raising=False)
    return env


def ingest_sample(data_dir: str) -> None:
    """Index the sample corpus straight into the embedded store the workers will open.

    (Straight into the store: this file tests the LLM path, not ingestion.)
    """
    from bus.settings import Settings
    from schemas import Document
    from workers.settings import load_worker_settings
    from workers.store import chunk_document, open_store

    settings = Settings(data_dir=Path(data_dir))
    settings.ensure_data_dir()
    store = open_store(settings, load_worker_settings())
    docs = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    chunks = [
        c
        for d in docs
        for c in chunk_document(Document(doc_id=d["_id"], title=d["title"], text=d["text"]))
    ]
    store.upsert("default", chunks)
    store.close()


# `ragrelay ...` in its own process, as a user runs it: worker deps build the Anthropic
# provider because a key is set.
CLI = "import sys; from ragrelay.cli.app import cli; sys.argv[0] = 'ragrelay'; cli()"


def run(*args: str, exit_code: int = 0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == exit_code, proc.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return parsed


def served_cost(server: FakeAnthropicServer) -> float:
    total = 0.0
    for req in server.message_requests():
        p, u = PRICES[req.model or ""], req.response["usage"]
        total += (
            u["input_tokens"] * p["input"]
            + u["output_tokens"] * p["output"]
            + u["cache_read_input_tokens"] * p["cache_read"]
            + u["cache_creation_input_tokens"] * p["cache_write"]
        ) / 1e6
    return total


def test_ask_json_runs_a_job_through_claude_shaped_calls(
    server: FakeAnthropicServer, cli_env: dict[str, str]
) -> None:
    ingest_sample(cli_env["RAGRELAY_DATA_DIR"])
    result = run("ask", "--json", QUESTION)
    assert result["status"] == "succeeded" and result["stop_reason"] == "accepted"
    assert result["citations"] and result["answer"]
    calls = server.message_requests()
    assert [r.tool_name for r in calls] == ["submit_analysis", "submit_answer", "submit_evaluation"]
    usage = result["usage"]
    assert usage["llm_calls"] == 3
    assert usage["input_tokens"] == sum(r.response["usage"]["input_tokens"] for r in calls)
    assert usage["output_tokens"] == sum(r.response["usage"]["output_tokens"] for r in calls)
    assert usage["cost_usd"] == pytest.approx(served_cost(server), abs=1e-7)
    seen = {
        (e["stage"], e["detail"].get("prompt_version"), e["detail"].get("model"))
        for e in result["trace"]
        if e["detail"].get("prompt_version")
    }
    assert seen == {
        ("analysis", load_prompt("analysis").ref, "claude-haiku-4-5"),
        ("generation", load_prompt("generation").ref, "claude-sonnet-4-6"),
        ("evaluation", load_prompt("evaluation").ref, "claude-haiku-4-5"),
    }


def test_revise_loop_adds_up_usage_and_reads_the_cache(
    server: FakeAnthropicServer, cli_env: dict[str, str]
) -> None:
    ingest_sample(cli_env["RAGRELAY_DATA_DIR"])
    server.enqueue(REVISE, tool="submit_evaluation")
    result = run("ask", "--json", QUESTION)
    assert result["iterations"] == 2 and result["stop_reason"] == "accepted"
    calls = server.message_requests()
    assert len(calls) == result["usage"]["llm_calls"] == 6
    assert "The answer misses part of the question" in json.dumps(calls[3].body["messages"])
    assert result["usage"]["cache_read_tokens"] > 0
    assert result["usage"]["cost_usd"] == pytest.approx(served_cost(server), abs=1e-7)


def test_budget_stops_the_job_before_the_call_it_cannot_afford(
    server: FakeAnthropicServer, cli_env: dict[str, str]
) -> None:
    ingest_sample(cli_env["RAGRELAY_DATA_DIR"])
    server.enqueue(REVISE, REVISE, REVISE, tool="submit_evaluation")
    result = run("ask", "--json", QUESTION, "--max-llm-calls", "4")
    assert result["status"] == "budget_exhausted"
    assert result["answer"]  # the best answer so far
    assert len(server.message_requests()) == result["usage"]["llm_calls"] <= 4


def test_malformed_generation_twice_fails_the_job_cleanly(
    server: FakeAnthropicServer, cli_env: dict[str, str]
) -> None:
    ingest_sample(cli_env["RAGRELAY_DATA_DIR"])
    server.enqueue(Reply.malformed(), Reply.malformed(), tool="submit_answer")
    result = run("ask", "--json", QUESTION, exit_code=1)
    assert result["status"] == "failed"
    assert "failed validation twice" in (result["error"] or "")
    assert len(server.message_requests("submit_answer")) == 2


def test_replay_reuses_recorded_outputs_of_unchanged_stages(
    server: FakeAnthropicServer, cli_env: dict[str, str]
) -> None:
    ingest_sample(cli_env["RAGRELAY_DATA_DIR"])
    job_id = run("ask", "--json", QUESTION)["job_id"]
    assert len(server.message_requests()) == 3

    # nothing changed: every stage answers from the recording, no call, same outcome
    same = run("replay", job_id, "--json")
    assert same["same"] is True and len(same["reused"]) == 3
    assert len(server.message_requests()) == 3

    # a pinned generation prompt: analysis reused; generation called with the v1 prompt
    pinned = run("replay", job_id, "--prompt-version", "generation=1", "--json")
    calls = server.message_requests()
    assert [r.tool_name for r in calls[3:]][:1] == ["submit_answer"]
    assert calls[3].body["system"][-1]["text"] == load_prompt("generation", 1).text
    assert "submit_analysis" not in [r.tool_name for r in calls[3:]]
    assert any(s.endswith("/analysis/0") for s in pinned["reused"])
    assert not any("/generation/" in s for s in pinned["reused"])
    before, after = (pinned["changed"]["prompt_versions"][k] for k in ("before", "after"))
    assert before["generation"] == load_prompt("generation").ref
    assert after["generation"] == load_prompt("generation", 1).ref

    # --fresh calls the model for every stage again
    n = len(server.message_requests())
    fresh = run("replay", job_id, "--fresh", "--json")
    assert fresh["reused"] == [] and len(server.message_requests()) == n + 3


def test_ingest_contextualize_writes_a_context_into_every_chunk(
    server: FakeAnthropicServer, cli_env: dict[str, str]
) -> None:
    from bus.settings import Settings
    from workers.providers.contextual import CONTEXT_KEY, PROMPT_KEY
    from workers.settings import load_worker_settings
    from workers.store import open_store

    summary = run("ingest", str(SAMPLE), "--contextualize", "--json")
    calls = server.message_requests()
    assert summary["contextualized_chunks"] == summary["chunks"] == len(calls) > 0
    assert summary["llm_calls"] == len(calls) and summary["cost_usd"] > 0
    assert summary["cost_usd"] == pytest.approx(served_cost(server), abs=1e-6)
    store = open_store(
        Settings(data_dir=Path(cli_env["RAGRELAY_DATA_DIR"])), load_worker_settings()
    )
    try:
        hits = store.search("default", "budget iterations deadline", k=3)
    finally:
        store.close()
    assert hits
    for hit in hits:
        meta = hit.chunk.metadata
        assert meta[PROMPT_KEY] == load_prompt("contextualize").ref and meta[CONTEXT_KEY]
        assert hit.chunk.text.startswith(meta[CONTEXT_KEY])


def test_ingest_contextualize_without_claude_says_what_to_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGRELAY_", "ANTHROPIC_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "ragrelay", "ingest", str(SAMPLE), "--contextualize"],
        cwd=ROOT,
        env={**env, "RAGRELAY_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode != 0
    assert "RAGRELAY_ANTHROPIC_API_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("store/*"))  # nothing half-written

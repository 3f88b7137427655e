"""MCP servers nobody here wrote as a tenant's retrieval sources, through whole jobs
(`ragrelay ask --json`, embedded, its own process; the retrieval worker starts the servers):

- ``mcp-server-git`` (PyPI) on a repository this test creates: a question only its history
  answers is answered, cited to the server and tool;
- ``@modelcontextprotocol/server-filesystem`` (npm, Node.js) confined to a folder the test
  fills: a question only a file there answers, cited to it;
- a misbehaving server (the SDK's MCPServer): a slow tool and a failing one degrade the job,
  recorded in the trace, and never stall it; a tool's text that speaks to the model is fenced
  and flagged like a document, never obeyed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.cluster import sample_corpus_env

pytestmark = pytest.mark.integration

MISBEHAVING = Path(__file__).parent / "mcp" / "misbehaving_server.py"
NODE_DIR = Path(__file__).parent / "mcp" / "node"
FILESYSTEM = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-filesystem"
FACT = "Raise the flux capacitor threshold to 1.21 gigawatts so the time circuits engage."
QUESTION = "What is the flux capacitor threshold?"


def make_repo(path: Path) -> Path:
    path.mkdir()
    git = ["git", "-C", str(path), "-c", "user.name=Emmett Brown", "-c", "user.email=e@b.test"]
    subprocess.run([*git, "init", "-q"], check=True)
    for message in ("Initial commit", FACT, "Tidy the README"):
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", message], check=True)
    return path


def git_source(repo: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "repo",
        "command": sys.executable,
        "args": ["-m", "mcp_server_git", "--repository", str(repo)],
        "tool": "git_log",
        "arguments": {"repo_path": str(repo), "max_count": 20},
        "timeout_s": 30,
        **extra,
    }


def misbehaving(name: str, tool: str, timeout_s: float = 30) -> dict[str, Any]:
    return {
        "name": name,
        "command": sys.executable,
        "args": [str(MISBEHAVING)],
        "tool": tool,
        "query_argument": "query",
        "timeout_s": timeout_s,
    }


def npm_installed() -> str:
    """The reference servers from the committed package-lock.json (`npm ci` when missing,
    as scripts/ensure-system-deps.sh does for `make test`); the path of node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are required for the MCP interop tests")
    wanted = (
        FILESYSTEM,
        NODE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector",
        NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-postgres",
        NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything",
    )
    if not all((package / "package.json").exists() for package in wanted):
        out = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, f"npm ci failed:\n{out.stdout}\n{out.stderr}"
    return node


def files_source(node: str, folder: Path) -> dict[str, Any]:
    return {
        "name": "files",
        "command": node,
        "args": [str(FILESYSTEM / "dist" / "index.js"), str(folder)],
        "tool": "read_text_file",
        "arguments": {"path": str(folder / "ops.md")},
        "timeout_s": 30,
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mcp-sources")
    repo = make_repo(root / "repo")
    folder = root / "files"
    folder.mkdir()
    (folder / "ops.md").write_text(
        "# Operations notes\n\nThe zephyr relay runs on port 4417 in the staging cluster.\n"
    )
    sources = {
        "tenants": {
            "acme": [git_source(repo)],
            "flaky": [
                git_source(repo),
                misbehaving("slow", "slow", timeout_s=3),
                misbehaving("broken", "broken"),
            ],
            "notes": [misbehaving("notes", "notes")],
            "ops": [files_source(npm_installed(), folder)],
        }
    }
    (root / "sources.json").write_text(json.dumps(sources))
    return sample_corpus_env(root / "data", "acme", RAGRELAY_MCP_SOURCES=str(root / "sources.json"))


def ask(env: dict[str, str], question: str, tenant: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "ragrelay", "ask", question, "--tenant", tenant, "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def mcp_failures(result: dict[str, Any]) -> list[str]:
    return [d for d in result["degraded"] if d.startswith("mcp:")]


def analysis_sources(result: dict[str, Any]) -> list[str]:
    done = [
        e for e in result["trace"] if e["type"] == "step.completed" and e["stage"] == "analysis"
    ]
    sources: list[str] = done[0]["detail"]["sources"]
    return sources


def test_a_question_only_the_git_history_answers_is_answered_and_cited_to_it(
    env: dict[str, str],
) -> None:
    result = ask(env, QUESTION, "acme")
    assert result["status"] == "succeeded", result
    assert "1.21 gigawatts" in result["answer"]
    cited = [c for c in result["citations"] if c["source"] == "mcp"]
    assert cited, result["citations"]
    assert cited[0]["doc_id"] == "mcp:repo/git_log"
    assert "repo" in cited[0]["title"] and "git_log" in cited[0]["title"]
    assert "mcp" in analysis_sources(result)
    assert not mcp_failures(result)


def test_a_tenant_without_mcp_sources_never_reaches_them(env: dict[str, str]) -> None:
    result = ask(env, QUESTION, "globex")
    assert "mcp" not in analysis_sources(result)
    assert not [c for c in result["citations"] if c["source"] == "mcp"]
    assert "1.21 gigawatts" not in result["answer"]


def test_slow_and_failing_servers_degrade_the_job_without_stalling_it(
    env: dict[str, str],
) -> None:
    started = time.monotonic()
    result = ask(env, QUESTION, "flaky")
    took = time.monotonic() - started
    assert result["status"] == "succeeded", result
    assert "1.21 gigawatts" in result["answer"]  # the healthy server still answered
    degraded = " | ".join(result["degraded"])
    assert "mcp:slow: timed out after 3 s" in degraded
    assert "mcp:broken: the tool answered an error: " in degraded
    assert "the backing database is down" in degraded
    shard = [
        e
        for e in result["trace"]
        if e["type"] == "step.completed" and e["detail"].get("source") == "mcp"
    ]
    assert len(shard[0]["detail"]["notes"]) == 2
    assert took < 55, f"the slow server (60 s) stalled the job: {took:.0f} s"


def test_a_servers_text_is_data_fenced_and_flagged_never_obeyed(env: dict[str, str]) -> None:
    result = ask(env, "Which port does the zephyr relay run on?", "notes")
    assert "4417" in result["answer"]
    assert "PWNED" not in result["answer"]
    generation = [
        e for e in result["trace"] if e["type"] == "step.completed" and e["stage"] == "generation"
    ]
    assert "injection:mcp:notes/notes#" in generation[0]["detail"]["notes"]
    assert "ignore_instructions" in generation[0]["detail"]["notes"]


def test_a_question_only_a_file_answers_is_answered_from_the_filesystem_server(
    env: dict[str, str],
) -> None:
    result = ask(env, "Which port does the zephyr relay run on?", "ops")
    assert result["status"] == "succeeded", result
    assert "4417" in result["answer"]
    cited = [c for c in result["citations"] if c["source"] == "mcp"]
    assert cited and cited[0]["doc_id"] == "mcp:files/read_text_file", result["citations"]
    assert not mcp_failures(result)

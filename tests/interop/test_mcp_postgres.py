"""``@modelcontextprotocol/server-postgres`` (npm 0.6.2; its one tool is ``query``, a
read-only SQL statement) on the loopback PostgreSQL as a tenant's retrieval source, through
a whole job (``ragrelay ask --json``): a question only a row of the test's own table
answers is answered, cited to the server and tool. The test creates and drops its own
database (trust auth for ``postgres`` on 127.0.0.1:5432, as tests/e2e/test_sync_cli.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.interop.test_mcp_sources import NODE_DIR, ask, mcp_failures, npm_installed
from tests.support.cluster import sample_corpus_env

pytestmark = pytest.mark.integration

POSTGRES = NODE_DIR / "node_modules" / "@modelcontextprotocol" / "server-postgres"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    name = f"ragrelay_mcp_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE berths (vessel text PRIMARY KEY, note text NOT NULL)")
            conn.execute(
                "INSERT INTO berths VALUES (%s, %s), (%s, %s)",
                (
                    "Kestrel",
                    "The Kestrel barge berths at dock 58 of the Varna harbour.",
                    "Osprey",
                    "The Osprey tug waits at the fuel pier.",
                ),
            )
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_source(node: str, dsn: str) -> dict[str, Any]:
    return {
        "name": "pg",
        "command": node,
        "args": [str(POSTGRES / "dist" / "index.js"), dsn],
        "tool": "query",
        "arguments": {"sql": "SELECT vessel, note FROM berths ORDER BY vessel"},
        "timeout_s": 30,
    }


@pytest.fixture(scope="module")
def env(database: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mcp-postgres")
    node = npm_installed()
    if not (POSTGRES / "package.json").exists():
        pytest.fail("server-postgres missing: run `npm ci` in tests/interop/mcp/node")
    sources = {"tenants": {"harbour": [postgres_source(node, database)]}}
    (root / "sources.json").write_text(json.dumps(sources))
    return sample_corpus_env(root / "data", "acme", RAGRELAY_MCP_SOURCES=str(root / "sources.json"))


def test_a_question_only_a_table_row_answers_is_answered_from_server_postgres(
    env: dict[str, str],
) -> None:
    result = ask(env, "At which dock does the Kestrel barge berth?", "harbour")
    assert result["status"] == "succeeded", result
    assert "58" in result["answer"], result["answer"]
    cited = [c for c in result["citations"] if c["source"] == "mcp"]
    assert cited and cited[0]["doc_id"] == "mcp:pg/query", result["citations"]
    assert "pg" in cited[0]["title"] and "query" in cited[0]["title"]
    assert not mcp_failures(result)


def test_a_tenant_without_the_source_never_reaches_the_table(env: dict[str, str]) -> None:
    result = ask(env, "At which dock does the Kestrel barge berth?", "acme")
    assert all(c["source"] != "mcp" for c in result["citations"]), result["citations"]
    assert "58" not in result["answer"]

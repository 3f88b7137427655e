"""`ragrelay sync dir` and `ragrelay sync postgres` (embedded mode, real CLI processes):
adds, edits and deletes are mirrored; unchanged content is not sent again; a run's report
counts each; the loopback PostgreSQL gets a database of the test's own."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docfiles import make_docx, make_pdf

pytestmark = pytest.mark.e2e

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def ragrelay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragrelay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def sync(env: dict[str, str], *args: str, code: int = 0) -> dict[str, Any]:
    out = ragrelay(env, "sync", *args, "--tenant", "mirror", "--json")
    assert out.returncode == code, out.stderr + out.stdout
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def counts(report: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return tuple(report[k] for k in ("added", "updated", "deleted", "unchanged", "failed"))  # type: ignore[return-value]


def cited(env: dict[str, str], question: str) -> set[str]:
    out = ragrelay(env, "ask", question, "--tenant", "mirror", "--json")
    return {c["doc_id"] for c in json.loads(out.stdout)["citations"]}


def test_sync_dir_mirrors_adds_edits_and_deletes(tmp_path: Path, base_env: dict[str, str]) -> None:
    root = tmp_path / "share"
    (root / "policies").mkdir(parents=True)
    make_pdf(root / "pump.pdf", ["The Quasar pump impeller is replaced every 7000 hours."])
    make_docx(
        root / "policies" / "travel.docx",
        title="Travel",
        sections=[("Trains", "Employees travel first class on trains longer than four hours.")],
    )
    (root / "notes.md").write_text("# Notes\nThe cafeteria opens at 7:30 on weekdays.\n")
    (root / "ignored.bin").write_bytes(b"\0\1")

    assert counts(sync(base_env, "dir", str(root))) == (3, 0, 0, 0, 0)
    again = sync(base_env, "dir", str(root))
    assert counts(again) == (0, 0, 0, 3, 0) and again["ingest_id"] is None  # nothing sent

    (root / "notes.md").write_text("# Notes\nThe cafeteria opens at 8:15 on weekdays.\n")
    (root / "policies" / "travel.docx").unlink()
    (root / "gate.txt").write_text("The warehouse gate code is 4711.\n")
    assert counts(sync(base_env, "dir", str(root))) == (1, 1, 1, 1, 0)

    assert "policies__travel.docx" not in cited(
        base_env, "Which class do employees travel on trains?"
    )
    out = ragrelay(base_env, "ask", "When does the cafeteria open?", "--tenant", "mirror", "--json")
    assert "8:15" in json.loads(out.stdout)["answer"]

    (root / "archive").mkdir()
    (root / "pump.pdf").rename(root / "archive" / "pump-2024.pdf")
    moved = sync(base_env, "dir", str(root))
    assert counts(moved) == (0, 0, 0, 2, 0) and (moved["renamed"], moved["reembedded"]) == (1, 0)
    out = ragrelay(base_env, "ask", "How often is the Quasar pump impeller replaced?",
                   "--tenant", "mirror", "--json")  # fmt: skip
    assert {c["doc_id"] for c in json.loads(out.stdout)["citations"]} == {"archive__pump-2024.pdf"}

    (root / "broken.pdf").write_bytes(b"not a pdf at all")
    bad = sync(base_env, "dir", str(root), code=1)
    assert counts(bad) == (0, 0, 0, 3, 1)
    assert "named .pdf but the bytes are text" in bad["failures"][0]["reason"]


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    import psycopg

    name = f"ragrelay_sync_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE articles (id text primary key, title text, body text, "
            "team text, updated_at timestamptz not null default now())"
        )
        conn.execute(
            "INSERT INTO articles (id, title, body, team) VALUES "
            "('kb-1', 'VPN', 'Connect to the VPN with the Tunnelblick client.', 'it'),"
            "('kb-2', 'Parking', 'Visitors park on level minus two.', 'facilities'),"
            "('kb-3', 'Printers', 'The printer on floor three is named Gutenberg.', 'it')"
        )
    yield dsn
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_sync_postgres_is_incremental_and_detects_deletions(
    pg_dsn: str, base_env: dict[str, str]
) -> None:
    import psycopg

    args = [
        "postgres", "--dsn", pg_dsn,
        "--query", "SELECT id, title, body, team, updated_at FROM articles",
        "--id-column", "id", "--text-column", "body", "--title-column", "title",
        "--updated-column", "updated_at", "--metadata-column", "team",
    ]  # fmt: skip
    assert counts(sync(base_env, *args)) == (3, 0, 0, 0, 0)
    assert counts(sync(base_env, *args)) == (0, 0, 0, 3, 0)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE articles SET body = 'Visitors park on level minus four.', "
            "updated_at = now() + interval '1 second' WHERE id = 'kb-2'"
        )
        conn.execute("DELETE FROM articles WHERE id = 'kb-3'")
        conn.execute("INSERT INTO articles (id, title, body, team) VALUES "
                     "('kb-4', 'Badges', 'Lost badges are replaced at reception.', 'it')")  # fmt: skip
    assert counts(sync(base_env, *args)) == (1, 1, 1, 1, 0)
    assert "kb-3" not in cited(base_env, "What is the printer on floor three called?")
    out = ragrelay(base_env, "ask", "Where do visitors park?", "--tenant", "mirror", "--json")
    assert "minus four" in json.loads(out.stdout)["answer"]

    bad = ragrelay(
        base_env, "sync", "postgres", "--dsn", pg_dsn, "--query", "SELECT nope FROM nowhere",
        "--id-column", "id", "--text-column", "body", "--tenant", "mirror",
    )  # fmt: skip
    assert bad.returncode == 2 and "PostgreSQL:" in bad.stderr and "nowhere" in bad.stderr

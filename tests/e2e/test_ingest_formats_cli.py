"""`ragrelay ingest` reads a folder of PDF, DOCX and HTML (embedded mode); a bad file is
skipped with its reason; `ragrelay ask` cites the page and the section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docfiles import HTML_PAGE, make_docx, make_pdf

pytestmark = pytest.mark.e2e


def ragrelay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragrelay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_folder_of_formats_is_ingested_and_answers_cite_page_and_section(
    tmp_path: Path, base_env: dict[str, str]
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(
        folder / "pump.pdf",
        [
            "General notes about the pump housing and its paint colour.",
            "The impeller of the Quasar pump must be replaced every 7000 operating hours.",
        ],
        title="Quasar Pump Manual",
        outline={0: "Overview", 1: "Maintenance"},
    )
    make_docx(
        folder / "policy.docx",
        title="Travel Policy",
        sections=[("Trains", "Employees travel first class on trains longer than four hours.")],
    )
    (folder / "falcon.html").write_text(HTML_PAGE)
    (folder / "broken.pdf").write_bytes(b"this is not a pdf")
    out = ragrelay(base_env, "ingest", str(folder), "--tenant", "docs", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["documents"] == 3 and summary["skipped_lines"] == 1
    assert "broken.pdf: named .pdf but the bytes are text" in out.stderr

    ask = ragrelay(
        base_env, "ask", "How often must the Quasar pump impeller be replaced?",
        "--tenant", "docs", "--json",
    )  # fmt: skip
    result = json.loads(ask.stdout)
    cited = {(c["doc_id"], c["page"], c["section"]) for c in result["citations"]}
    assert ("pump.pdf", 2, "Maintenance") in cited, result

    ask = ragrelay(base_env, "ask", "How many quail eggs does Zorbath eat?", "--tenant", "docs")
    assert "falcon.html#0 — Falcon Handbook, Falcon Handbook > Feeding" in ask.stdout, ask.stdout

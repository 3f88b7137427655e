"""`ragrelay eval retrieval|qa` as a user runs them: real CLI processes over small files.

Small corpora written here (gzipped like ../shared/data); the measured figures on the shared
data are in docs/benchmarks.md. These tests check the interfaces (exact JSON keys), the A/B
comparison of two prompt versions, and bad input.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DOCS = [
    ("nile", "Nile", "The Nile is about 6,650 km long. It flows north into the Mediterranean Sea."),
    (
        "amazon",
        "Amazon",
        "The Amazon carries more water than any other river. It drains a basin in South America.",
    ),
    ("danube", "Danube", "The Danube flows through ten countries. It empties into the Black Sea."),
    ("volga", "Volga", "The Volga is the longest river in Europe. It flows into the Caspian Sea."),
    (
        "rhine",
        "Rhine",
        "The Rhine begins in the Swiss Alps. It reaches the North Sea in the Netherlands.",
    ),
]
QUESTIONS = [
    ("q1", "How long is the Nile?", ["6,650 km"], "nile"),
    ("q2", "Into which sea does the Volga flow?", ["Caspian Sea"], "volga"),
    ("q3", "Where does the Rhine begin?", ["Swiss Alps"], "rhine"),
    ("q4", "Which sea does the Danube empty into?", ["Black Sea"], "danube"),
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "corpus.jsonl.gz", [{"_id": d, "title": t, "text": x} for d, t, x in DOCS]
    )


@pytest.fixture
def questions(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "questions.jsonl",
        [{"_id": i, "question": q, "answers": a, "paragraph_id": p} for i, q, a, p in QUESTIONS],
    )


def ragrelay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env["RAGRELAY_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "ragrelay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def last_json(out: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return value


def test_eval_qa_prints_the_documented_keys(tmp_path: Path, corpus: Path, questions: Path) -> None:
    run = ragrelay(
        tmp_path, "eval", "qa", "--corpus", str(corpus), "--questions", str(questions), "--json"
    )
    assert run.returncode == 0, run.stderr
    out = last_json(run.stdout)
    for key in (
        "questions",
        "retrieval_hit@5",
        "answer_hit",
        "answer_words_mean",
        "iterations_mean",
        "p50_ms",
        "p95_ms",
    ):
        assert key in out, key
    assert out["questions"] == 4 and out["documents"] == 5
    assert out["retrieval_hit@5"] == 1.0 and out["answer_hit"] >= 0.75


def test_eval_qa_ab_compares_two_prompt_versions_with_intervals(
    tmp_path: Path, corpus: Path, questions: Path
) -> None:
    report = tmp_path / "report"
    run = ragrelay(
        tmp_path,
        "eval",
        "qa",
        "--corpus",
        str(corpus),
        "--questions",
        str(questions),
        "--prompt-version",
        "evaluation=2",
        "--resamples",
        "500",
        "--report",
        str(report),
        "--rows",
        str(tmp_path / "rows.jsonl"),
        "--json",
    )
    assert run.returncode == 0, run.stderr
    out = last_json(run.stdout)
    assert out["A"]["prompt_versions"]["evaluation"] == "offline-evaluation@v4"
    assert out["B"]["prompt_versions"]["evaluation"] == "offline-evaluation@v2"
    assert out["A"]["prompt_versions"]["generation"] == out["B"]["prompt_versions"]["generation"]
    comps = {c["metric"]: c for c in out["comparison"]}
    assert {"answer_hit", "iterations", "answer_words", "latency_s"} <= comps.keys()
    for c in comps.values():
        assert c["n"] == 4 and c["ci_low"] <= c["diff"] <= c["ci_high"]
        assert c["diff"] == pytest.approx(c["mean_b"] - c["mean_a"])
    # the stricter evaluator never accepts more, so B loops at least as often as A
    assert out["B"]["accepted"] <= out["A"]["accepted"]
    assert out["B"]["iterations_mean"] >= out["A"]["iterations_mean"]
    assert (report / "ab.md").read_text().count("| answer_hit |") == 1
    assert (report / "ab.png").read_bytes().startswith(b"\x89PNG")
    assert (report / "A" / "report.md").exists() and (report / "B" / "report.md").exists()
    rows_b = (tmp_path / "rows.B.jsonl").read_text().splitlines()
    assert len(rows_b) == 4


def test_eval_qa_rejects_a_bad_prompt_version_before_any_work(
    tmp_path: Path, corpus: Path, questions: Path
) -> None:
    run = ragrelay(
        tmp_path,
        "eval",
        "qa",
        "--corpus",
        str(corpus),
        "--questions",
        str(questions),
        "--prompt-version",
        "generation",
    )
    assert run.returncode == 2
    assert "expected NAME=VERSION" in run.stderr and "Traceback" not in run.stderr
    run = ragrelay(
        tmp_path,
        "eval",
        "qa",
        "--corpus",
        str(corpus),
        "--questions",
        str(questions),
        "--prompt-version",
        "generation=9",
    )
    assert run.returncode != 0 and "has no v9" in run.stderr and "Traceback" not in run.stderr


def beir_files(tmp_path: Path) -> tuple[Path, Path]:
    queries = write_jsonl(
        tmp_path / "queries.jsonl.gz", [{"_id": i, "text": q} for i, q, _, _ in QUESTIONS]
    )
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{i}\t{p}\t1\n" for i, _, _, p in QUESTIONS[:3])
    )
    return queries, qrels


def test_eval_qa_with_beir_qrels_scores_the_jobs_documents(tmp_path: Path, corpus: Path) -> None:
    queries, qrels = beir_files(tmp_path)
    run = ragrelay(
        tmp_path,
        "eval",
        "qa",
        "--corpus",
        str(corpus),
        "--questions",
        str(queries),
        "--qrels",
        str(qrels),
        "--no-loop",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    out = last_json(run.stdout)
    assert out["questions"] == 3  # only judged queries count
    assert out["retrieval_hit@5"] == 1.0 and 0.5 < out["ndcg@10"] <= 1.0
    assert out["iterations_mean"] == 1.0 and out["answer_hit"] is None


def test_eval_retrieval_prints_the_documented_keys(tmp_path: Path, corpus: Path) -> None:
    queries, qrels = beir_files(tmp_path)
    run = ragrelay(
        tmp_path,
        "eval",
        "retrieval",
        "--corpus",
        str(corpus),
        "--queries",
        str(queries),
        "--qrels",
        str(qrels),
        "--json",
    )
    assert run.returncode == 0, run.stderr
    out = last_json(run.stdout)
    assert {"ndcg@10", "recall@100", "queries", "seconds"} <= out.keys()
    assert out["queries"] == 3 and out["recall@100"] == 1.0 and out["ndcg@10"] > 0.9
    # the retrieval stage alone, timed on a second pass at k=10
    assert 0 < out["search_k10_p50_ms"] <= out["search_k10_p95_ms"]
    assert out["search_k10_cpu_ms"] > 0

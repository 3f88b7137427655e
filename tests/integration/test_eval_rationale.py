"""`ragrelay eval rationale` as a user runs it (issue 22): a real CLI process over a small
corpus and claims in the SciFact release format; the figures on ../shared/data are in
docs/benchmarks.md ("Answers that answer")."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ABSTRACTS = [
    (
        1,
        "Aspirin and stroke in older adults",
        [
            "OBJECTIVE To investigate whether daily aspirin lowers the risk of stroke in older "
            "adults.",
            "METHODS We followed 2,000 adults aged over 70 for five years.",
            "RESULTS Daily aspirin lowered the risk of ischaemic stroke by 20% (p < 0.01).",
            "CONCLUSIONS Aspirin may protect older adults.",
        ],
    ),
    (
        2,
        "Statins after myocardial infarction",
        [
            "BACKGROUND Statins are widely prescribed after a heart attack.",
            "We aimed to assess whether statins reduce mortality after myocardial infarction.",
            "Statins reduced mortality after myocardial infarction by a third.",
        ],
    ),
    (3, "River deltas", ["The Nile delta is fertile.", "It is farmed intensively."]),
]
CLAIMS = [
    {
        "id": 1,
        "claim": "Daily aspirin lowers the risk of stroke in older adults.",
        "evidence": {"1": [{"sentences": [2], "label": "SUPPORT"}]},
        "cited_doc_ids": [1],
    },
    {
        "id": 2,
        "claim": "Statins reduce mortality after myocardial infarction.",
        "evidence": {"2": [{"sentences": [2], "label": "SUPPORT"}]},
        "cited_doc_ids": [2],
    },
    {"id": 3, "claim": "Coffee causes insomnia.", "evidence": {}, "cited_doc_ids": [3]},
]


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


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


def test_eval_rationale_scores_first_sentences_against_gold_rationales(tmp_path: Path) -> None:
    corpus = write(
        tmp_path / "release_corpus.jsonl.gz",
        [{"doc_id": d, "title": t, "abstract": a, "structured": True} for d, t, a in ABSTRACTS],
    )
    claims = write(tmp_path / "claims.jsonl.gz", CLAIMS)
    rows = tmp_path / "rows.jsonl"
    args = ["eval", "rationale", "--corpus", str(corpus), "--claims", str(claims)]
    run = ragrelay(tmp_path, *args, "--rows", str(rows), "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    for key in ("claims", "rationale_hit", "doc_hit", "answer_words_mean", "p50_ms"):
        assert key in out, key
    assert out["claims"] == 2 and out["documents"] == 3  # the claim without evidence is out
    assert out["doc_hit"] == 1.0 and out["rationale_hit"] == 1.0, rows.read_text()
    answers = [json.loads(line)["answer"] for line in rows.read_text().splitlines()]
    assert not any(a.startswith(("RESULTS", "OBJECTIVE")) for a in answers)

    # today's generator and evaluator, on the same store in the same run: the aims
    kept = tmp_path / "store"
    both = ragrelay(
        tmp_path,
        *args,
        "--limit",
        "2",
        "--prompt-version",
        "generation=1",
        "--prompt-version",
        "evaluation=3",
        "--store-dir",
        str(kept),
        "--json",
    )
    assert both.returncode == 0, both.stderr
    ab = json.loads(both.stdout.strip().splitlines()[-1])
    assert ab["A"]["rationale_hit"] == 1.0 and ab["B"]["rationale_hit"] < 1.0
    assert ab["B"]["prompt_versions"]["generation"] == "offline-generation@v1"
    # a kept store is reused, not ingested again
    again = ragrelay(tmp_path, *args, "--store-dir", str(kept), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout.strip().splitlines()[-1])["rationale_hit"] == 1.0


def test_eval_rationale_names_a_wrong_file(tmp_path: Path) -> None:
    claims = write(tmp_path / "claims.jsonl", CLAIMS)
    beir = write(tmp_path / "corpus.jsonl", [{"_id": "1", "title": "t", "text": "x"}])
    run = ragrelay(tmp_path, "eval", "rationale", "--corpus", str(beir), "--claims", str(claims))
    assert run.returncode == 2 and "corpus.jsonl:1" in run.stderr and "abstract" in run.stderr
    assert "Traceback" not in run.stderr

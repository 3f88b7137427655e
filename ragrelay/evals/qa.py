"""`ragrelay eval qa`: questions through the whole pipeline (every stage), scored SQuAD-style.

Ingests the corpus into a fresh embedded store, asks each question as a job, and measures
retrieval (is the gold paragraph among the top 5 cited/retrieved documents), the answer
(does a gold answer, SQuAD-normalised, appear in the answer's first sentence; token F1 of
the short answer), length, loop iterations and latency. ``--no-loop`` caps every job at one
iteration, so the loop's gain is the difference of two runs.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bus.errors import UsageError
from bus.settings import Settings
from ragrelay.cli.settings import workers_of
from ragrelay.client import RagrelayClient
from ragrelay.corpus import ReadReport, read_documents
from ragrelay.evals.ab import LOWER_IS_BETTER, Comparison, compare_runs, render_comparisons
from ragrelay.evals.files import json_lines, read_qrels
from ragrelay.evals.metrics import answer_hit, mean, ndcg_at_k, token_f1
from ragrelay.evals.report import (
    percentile,
    row_from_result,
    score_columns,
    summarize,
    write_ab_report,
    write_report,
)
from ragrelay.observe.flags import parse_prompt_versions
from ragrelay.observe.replay import prompt_versions
from schemas import Budget, IngestTask, JobRequest, JobResult
from workers.deps import build_provider, close_provider
from workers.text.tokenize import sentences
from workers.web import DisabledWeb

TENANT = "eval"


def read_questions(path: Path, limit: int | None) -> Iterator[dict[str, Any]]:
    """SQuAD-style rows ``{"_id", "question", "answers", "paragraph_id"?}``; ``query`` or
    BEIR's ``text`` stand in for ``question``. Gzipped or not."""
    for n, (lineno, row) in enumerate(json_lines(path), start=1):
        question = (
            row.get("question") or row.get("query") or row.get("text")
            if isinstance(row, dict)
            else None
        )
        if not question:
            raise UsageError(f"{path}:{lineno}: expected an object with a 'question'")
        yield {
            "_id": str(row.get("_id", lineno)),
            "question": question,
            "answers": list(row.get("answers") or []),
            "paragraph_id": row.get("paragraph_id"),
        }
        if limit is not None and n >= limit:
            return


def answer_iteration(result: JobResult) -> int | None:
    """The iteration whose generation wrote the job's final answer (the latest that did)."""
    for event in reversed(result.trace):
        if event.type == "step.completed" and event.stage == "generation":
            recorded = event.detail.get("result") or {}
            if recorded.get("answer") == result.answer:
                return event.iteration
    return None


def ranked_documents(result: JobResult) -> list[str]:
    """Cited documents first, then the fused retrieval of the answer's iteration.

    A looped job returns its best-judged answer, which need not be the last iteration's;
    its documents are scored with the evidence that answer was written from.
    """
    fused = [e for e in result.trace if e.type == "retrieval.fused"]
    iteration = answer_iteration(result)
    chosen = [e for e in fused if e.iteration == iteration] or fused
    docs = [c.doc_id for c in result.citations]
    if chosen:
        docs += list(chosen[-1].detail.get("doc_ids", []))
    return list(dict.fromkeys(docs))


def score(
    case: dict[str, Any], result: JobResult, relevance: Mapping[str, int] | None = None
) -> dict[str, float]:
    first = (sentences(result.answer) or [""])[0]
    gold = case["answers"]
    out: dict[str, float] = {"answer_words": float(len(result.answer.split()))}
    if gold:
        out["answer_hit"] = float(answer_hit(first, gold))
        out["f1"] = token_f1(result.short_answer or first, gold)
    ranked = ranked_documents(result)
    if relevance:  # BEIR qrels: graded relevance of documents
        out["retrieval_hit@5"] = float(any(relevance.get(d, 0) > 0 for d in ranked[:5]))
        out["ndcg@10"] = ndcg_at_k(ranked, relevance, 10)
    elif case.get("paragraph_id"):
        out["retrieval_hit@5"] = float(case["paragraph_id"] in ranked[:5])
    return out


def ingest_corpus(client: RagrelayClient, corpus: Path, batch: int = 64) -> tuple[int, int]:
    report = ReadReport()
    docs = list(read_documents(corpus, report))
    if not docs:
        raise UsageError(f"{corpus}: no documents ({len(report.problems)} problems)")
    for i in range(0, len(docs), batch):
        task = IngestTask(
            run_id="eval", batch=i // batch, tenant=TENANT, documents=docs[i : i + batch]
        )
        client.run_task("ragrelay.ingest", task.to_dict())
    return len(docs), len(report.problems)


@click.command("qa")
@click.option(
    "--corpus",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Documents (.jsonl or .jsonl.gz rows with _id, title, text), ingested into "
    "a fresh temporary store.",
)
@click.option(
    "--questions",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SQuAD-style rows (_id, question, answers, paragraph_id), feedback cases "
    "from `ragrelay feedback export`, or BEIR queries (_id, text) with --qrels.",
)
@click.option(
    "--qrels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="BEIR qrels (query-id, corpus-id, score): retrieval_hit@5 and "
    "ndcg@10 of the job's cited-then-retrieved documents (e.g. SciFact claims).",
)
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option(
    "--loop/--no-loop",
    default=True,
    show_default=True,
    help="Allow the evaluate→rewrite loop (--no-loop: one iteration per job).",
)
@click.option("--max-iterations", type=int, default=3, show_default=True)
@click.option(
    "--prompt-version",
    "prompt_version",
    multiple=True,
    metavar="NAME=VERSION",
    help="A/B: run the questions twice, A with the configured prompt versions "
    "(RAGRELAY_PROMPT_VERSIONS or the defaults) and B with these pinned on top "
    "(repeatable, e.g. generation=2), and report B - A per metric with "
    "paired-bootstrap confidence intervals.",
)
@click.option(
    "--resamples",
    type=click.IntRange(100, 1_000_000),
    default=10_000,
    show_default=True,
    help="Bootstrap resamples for the A/B intervals.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a Markdown report with plots to this directory "
    "(A/B: A/ and B/ reports plus ab.md and ab.png).",
)
@click.option(
    "--rows",
    "rows_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one JSON row per question (for `eval ab`; "
    "A/B: FILE with .A and .B before its suffix).",
)
@click.pass_context
def qa_command(
    ctx: click.Context,
    corpus: Path,
    questions: Path,
    qrels: Path | None,
    limit: int | None,
    loop: bool,
    max_iterations: int,
    prompt_version: tuple[str, ...],
    resamples: int,
    as_json: bool,
    report_dir: Path | None,
    rows_out: Path | None,
) -> None:
    """Ask SQuAD-style QUESTIONS over CORPUS through every stage; print the scores.

    With --prompt-version, compare two prompt versions (or offline configurations) on the
    same questions and the same store."""
    root: Settings = ctx.find_root().obj
    workers = workers_of(ctx)
    pins = parse_prompt_versions(prompt_version) if prompt_version else None
    if pins is not None:  # an unknown name or version fails now, not in every job
        close_provider(
            build_provider(
                root,
                workers.replace(
                    prompts={"prompt_versions": {**workers.prompts.prompt_versions, **pins}}
                ),
                DisabledWeb(),
            )
        )
    cases = list(read_questions(questions, limit))
    judged = read_qrels(qrels) if qrels is not None else {}
    if qrels is not None:
        cases = [c for c in cases if c["_id"] in judged]  # BEIR: only judged queries count
        for case in cases:
            case["relevance"] = judged[case["_id"]]
    budget = Budget(max_iterations=max_iterations if loop else 1)
    with tempfile.TemporaryDirectory(prefix="ragrelay-eval-qa-") as tmp:
        settings = root.model_copy(update={"redis_url": None, "data_dir": Path(tmp)})
        workers = workers.replace(store={"kind": "embedded"})  # a fresh temporary store
        client = RagrelayClient.from_settings(settings, workers)
        t0 = time.perf_counter()
        n_docs, skipped = ingest_corpus(client, corpus)
        ingest_s = time.perf_counter() - t0
        arm_a = _run_arm(client, cases, budget, label="eval qa" if pins is None else "A")
        client.close()
        arm_b: Arm | None = None
        if pins is not None:
            b_workers = workers.replace(
                prompts={"prompt_versions": {**workers.prompts.prompt_versions, **pins}}
            )
            client = RagrelayClient.from_settings(settings, b_workers)  # same store, other prompts
            arm_b = _run_arm(client, cases, budget, label="B")
            client.close()
    summary = _summary(arm_a.rows, arm_a.latencies, n_docs, skipped, ingest_s, loop)
    if arm_b is None:
        _write_outputs(arm_a.rows, summary, rows_out, report_dir)
        _print(summary, as_json)
        return
    summary_b = _summary(arm_b.rows, arm_b.latencies, n_docs, skipped, ingest_s, loop)
    label_a, label_b = arm_labels(arm_a.versions, arm_b.versions)
    comps = compare_arms(arm_a.rows, arm_b.rows, resamples=resamples)
    _write_outputs(arm_a.rows, summary, _arm_path(rows_out, "A"), _arm_dir(report_dir, "A"))
    _write_outputs(arm_b.rows, summary_b, _arm_path(rows_out, "B"), _arm_dir(report_dir, "B"))
    if report_dir is not None:
        write_ab_report(comps, report_dir, label_a=label_a, label_b=label_b)
    out = {
        "questions": len(cases),
        "documents": n_docs,
        "loop": loop,
        "A": {**summary, "prompt_versions": arm_a.versions},
        "B": {**summary_b, "prompt_versions": arm_b.versions},
        "comparison": [c.to_dict() for c in comps],
    }
    if as_json:
        click.echo(json.dumps(out))
    else:
        click.echo(render_comparisons(comps, label_a=label_a, label_b=label_b), nl=False)


@dataclass
class Arm:
    rows: list[dict[str, Any]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # stage -> recorded prompt version


def arm_progress(label: str) -> Progress:
    """The bar of one arm of questions asked through the pipeline (stderr, when a terminal)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        disable=not sys.stderr.isatty(),
    )


def _run_arm(
    client: RagrelayClient, cases: list[dict[str, Any]], budget: Budget, *, label: str
) -> Arm:
    arm = Arm()
    with arm_progress(label) as bar:
        task = bar.add_task("qa", total=len(cases))
        for case in cases:
            started = time.perf_counter()
            result = client.with_trace(
                client.ask(JobRequest(query=case["question"], tenant=TENANT, budget=budget))
            )
            latency = time.perf_counter() - started
            arm.latencies.append(latency)
            arm.versions.update(prompt_versions(result.trace))
            arm.rows.append(
                row_from_result(
                    case["_id"],
                    case["question"],
                    result,
                    latency_s=latency,
                    metrics=score(case, result, case.get("relevance")),
                )
            )
            bar.advance(task)
    return arm


#: Compared in an A/B, besides every evaluation score both arms report.
AB_METRICS = (
    "answer_hit",
    "f1",
    "retrieval_hit@5",
    "ndcg@10",
    "answer_words",
    "iterations",
    "latency_s",
)


def compare_arms(
    rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], *, resamples: int = 10_000
) -> list[Comparison]:
    scores = sorted(set(score_columns(rows_a)) & set(score_columns(rows_b)) - set(AB_METRICS))
    lower = LOWER_IS_BETTER | {"answer_words"}
    return compare_runs(
        rows_a, rows_b, [*AB_METRICS, *scores], resamples=resamples, lower_is_better=lower
    )


def arm_labels(a: dict[str, str], b: dict[str, str]) -> tuple[str, str]:
    """Name each arm by the prompt versions that differ (all of them when none does)."""
    stages = [s for s in sorted(a.keys() | b.keys()) if a.get(s) != b.get(s)] or sorted(a)
    return (
        ", ".join(a.get(s, "?") for s in stages) or "A",
        ", ".join(b.get(s, "?") for s in stages) or "B",
    )


def _arm_path(path: Path | None, arm: str) -> Path | None:
    return None if path is None else path.with_name(f"{path.stem}.{arm}{path.suffix}")


def _arm_dir(path: Path | None, arm: str) -> Path | None:
    return None if path is None else path / arm


def _write_outputs(
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    rows_out: Path | None,
    report_dir: Path | None,
) -> None:
    if rows_out is not None:
        rows_out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if report_dir is not None:
        write_report(rows, {**summarize(rows), **summary}, report_dir)


def _print(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary))
    else:
        for key, value in summary.items():
            click.echo(f"{key:>20}: {value}")


def _summary(
    rows: list[dict[str, Any]],
    latencies: list[float],
    n_docs: int,
    skipped: int,
    ingest_s: float,
    loop: bool,
) -> dict[str, Any]:
    def metric(name: str) -> float | None:
        vals = [r["metrics"][name] for r in rows if name in r["metrics"]]
        return round(mean(vals), 4) if vals else None

    ms = [x * 1000 for x in latencies]
    return {
        "questions": len(rows),
        "documents": n_docs,
        "skipped_lines": skipped,
        "loop": loop,
        "retrieval_hit@5": metric("retrieval_hit@5"),
        "ndcg@10": metric("ndcg@10"),
        "answer_hit": metric("answer_hit"),
        "f1": metric("f1"),
        "answer_words_mean": metric("answer_words"),
        "iterations_mean": round(mean(r["iterations"] for r in rows), 3) if rows else None,
        "accepted": round(mean(float(r["stop_reason"] == "accepted") for r in rows), 4)
        if rows
        else None,
        "p50_ms": round(percentile(ms, 50), 1) if ms else None,
        "p95_ms": round(percentile(ms, 95), 1) if ms else None,
        "ingest_seconds": round(ingest_s, 2),
    }

"""``ragrelay eval retrieval``: BEIR-style retrieval evaluation of the embedded store.

Ingests the corpus into a fresh temporary store (the default embedder unless told
otherwise), runs every query with a qrels entry through the same search the retrieval
worker uses, collapses chunks to documents and prints nDCG@10 and Recall@100 as JSON, then
times the same queries again at k=10 (the retrieval stage alone, warm index).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from bus.errors import UsageError
from ragrelay.evals.files import read_qrels, read_queries
from ragrelay.evals.metrics import collapse_to_documents, mean, ndcg_at_k, recall_at_k
from ragrelay.evals.report import percentile
from schemas import Document
from workers.embeddings import EMBEDDERS, load_embedder
from workers.store.chunking import chunk_document
from workers.store.embedded import EmbeddedStore, SearchConfig

TENANT = "eval"


def read_corpus(path: Path) -> Iterator[Document]:
    from ragrelay.corpus import ReadReport, read_documents

    report = ReadReport()
    yield from read_documents(path, report)
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )


LATENCY_K = 10


def _timed_searches(
    store: EmbeddedStore, queries: list[str], k: int, advance: Callable[[], None]
) -> dict[str, float | None]:
    """The retrieval stage alone, as a worker runs it: every query once more at ``k``, on
    the warm index the quality pass left. Wall p50/p95 and mean CPU (all threads) per search.
    """
    walls: list[float] = []
    cpu_started = time.process_time()
    for text in queries:
        t0 = time.perf_counter()
        store.search(TENANT, text, k=k)
        walls.append((time.perf_counter() - t0) * 1000)
        advance()
    cpu_ms = (time.process_time() - cpu_started) * 1000
    if not walls:
        return {
            f"search_k{k}_p50_ms": None,
            f"search_k{k}_p95_ms": None,
            f"search_k{k}_cpu_ms": None,
        }
    return {
        f"search_k{k}_p50_ms": round(percentile(walls, 50), 2),
        f"search_k{k}_p95_ms": round(percentile(walls, 95), 2),
        f"search_k{k}_cpu_ms": round(cpu_ms / len(walls), 2),
    }


def evaluate_retrieval(
    corpus: Path,
    queries: Path,
    qrels: Path,
    *,
    limit: int | None = None,
    embedder_name: str = "auto",
    config: SearchConfig | None = None,
    model_cache: Path | None = None,
    batch: int = 64,
    store_path: Path | None = None,
) -> dict[str, Any]:
    """Run the evaluation; returns the JSON-ready result."""
    judged = read_qrels(qrels)
    texts = read_queries(queries)
    qids = [q for q in texts if q in judged]
    if limit is not None:
        qids = qids[:limit]
    started = time.perf_counter()
    embedder = load_embedder(embedder_name, cache_dir=model_cache)
    docs = list(read_corpus(corpus))
    with tempfile.TemporaryDirectory(prefix="ragrelay-eval-") as tmp:
        path = store_path or Path(tmp) / "eval.sqlite3"
        store = EmbeddedStore(path, embedder, config=config)
        try:
            with _progress() as progress:
                ingest_s = 0.0
                if store.count(TENANT) == 0:  # a kept --store is ingested once
                    task = progress.add_task("ingest", total=len(docs))
                    t0 = time.perf_counter()
                    for i in range(0, len(docs), batch):
                        part = docs[i : i + batch]
                        store.upsert(TENANT, [c for d in part for c in chunk_document(d)])
                        progress.advance(task, len(part))
                    ingest_s = time.perf_counter() - t0
                ndcgs: list[float] = []
                recalls: list[float] = []
                latencies: list[float] = []  # k=200, as ranked for the metrics
                task = progress.add_task("queries", total=len(qids))
                for qid in qids:
                    t1 = time.perf_counter()
                    hits = store.search(TENANT, texts[qid], k=200)
                    latencies.append((time.perf_counter() - t1) * 1000)
                    ranking = collapse_to_documents(h.chunk.doc_id for h in hits)
                    ndcgs.append(ndcg_at_k(ranking, judged[qid], 10))
                    recalls.append(recall_at_k(ranking, judged[qid], 100))
                    progress.advance(task)
                task = progress.add_task("latency (k=10)", total=len(qids))
                latency = _timed_searches(
                    store, [texts[q] for q in qids], LATENCY_K, lambda: progress.advance(task)
                )
        finally:
            store.close()
    return {
        "ndcg@10": round(mean(ndcgs), 4),
        "recall@100": round(mean(recalls), 4),
        "queries": len(qids),
        "documents": len(docs),
        "seconds": round(time.perf_counter() - started, 2),
        "ingest_docs_per_s": round(len(docs) / ingest_s, 1) if ingest_s > 0 else None,
        "search_p50_ms": round(percentile(latencies, 50), 2) if latencies else None,
        **latency,
        "embedder": embedder.name,
        "config": {k: v for k, v in vars(store.config).items()},
    }


def apply_settings(config: SearchConfig, settings: tuple[str, ...]) -> SearchConfig:
    """``KEY=VALUE`` overrides of SearchConfig fields, parsed by the field's type."""
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or key not in vars(config):
            raise click.BadParameter(
                f"{item!r}: use KEY=VALUE with KEY one of {', '.join(vars(config))}",
                param_hint="--set",
            )
        current = getattr(config, key)
        value: Any
        if isinstance(current, bool):
            value = raw.lower() in ("1", "true", "yes", "on")
        elif isinstance(current, int):
            value = int(raw)
        elif isinstance(current, float):
            value = float(raw)
        else:
            value = raw
        config = replace(config, **{key: value})
    return config


@click.command("retrieval")
@click.option(
    "--corpus", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--queries", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--qrels", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="first N judged queries")
@click.option(
    "--embedder", "embedder_name", type=click.Choice(EMBEDDERS), default="auto", show_default=True
)
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "bm25", "dense"]),
    default=None,
    help="retriever(s) to use (default: the store's default, hybrid)",
)
@click.option("--fusion", type=click.Choice(["score", "rrf", "zscore"]), default=None)
@click.option("--prf/--no-prf", default=None, help="RM3 feedback on the keyword side")
@click.option("--contextual/--no-contextual", default=None, help="index title with each chunk")
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="keep the ingested store in this file and reuse it next time "
    "(default: a fresh temporary store)",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="override a SearchConfig field, e.g. --set k1=1.2, or --set "
    "sentence_window=0 to measure without sentence windows",
)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def retrieval_command(
    corpus: Path,
    queries: Path,
    qrels: Path,
    limit: int | None,
    embedder_name: str,
    mode: str | None,
    fusion: str | None,
    prf: bool | None,
    contextual: bool | None,
    store_path: Path | None,
    settings: tuple[str, ...],
    as_json: bool,
) -> None:
    """nDCG@10 and Recall@100 of the embedded store on a BEIR-style dataset.

    Then every query runs once more at k=10 on the warm index: search_k10_p50_ms,
    search_k10_p95_ms and search_k10_cpu_ms time the retrieval stage alone (query
    embedding, both retrievers, fusion, feedback). With --store, a second run skips the
    ingest.
    """
    config = SearchConfig()
    if mode is not None:
        config = replace(config, mode=mode)
    if fusion is not None:
        config = replace(config, fusion=fusion)
    if prf is not None:
        config = replace(config, prf=prf)
    if contextual is not None:
        config = replace(config, contextual=contextual)
    config = apply_settings(config, settings)
    try:
        result = evaluate_retrieval(
            corpus,
            queries,
            qrels,
            limit=limit,
            embedder_name=embedder_name,
            config=config,
            store_path=store_path,
        )
    except UsageError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result))
    else:
        for key, value in result.items():
            click.echo(f"{key:>20}: {value}")

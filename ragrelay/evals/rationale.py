"""`ragrelay eval rationale`: does the answer to a SciFact claim state the evidence?

Ingests the abstracts of a SciFact release corpus (``{"doc_id", "title", "abstract":
[sentence, ...]}``) into a fresh embedded store, asks each claim that has evidence
(``{"id", "claim", "evidence": {doc_id: [{"sentences": [i, ...], "label"}]}}``) through
the whole pipeline, and scores:

- ``rationale_hit``: the answer's first sentence is one of the gold rationale sentences of
  a gold document (the SciFact paper's rationale selection), compared after whitespace
  normalisation. A leading section label ("RESULTS", "CONCLUSIONS" ...) is left out on both
  sides, and a first sentence that is several consecutive abstract sentences the
  generator's splitter read as one ("1.4 +/-" + "0.24 versus ...") counts when one of
  them is a rationale;
- ``doc_hit``: the answer's first citation is a gold document (a sentence can only be right
  when its document is);
- ``answer_words_mean``, ``iterations_mean``, ``accepted``, ``p50_ms``, ``p95_ms``.

With ``--prompt-version`` both arms run on the same store in the same run (A: the
configured versions, B: these pinned on top), so today's generator and another can be
compared without ingesting twice.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from bus.errors import UsageError
from bus.settings import Settings
from ragrelay.cli.settings import settings_of, workers_of
from ragrelay.client import RagrelayClient
from ragrelay.evals.files import json_lines
from ragrelay.evals.metrics import mean
from ragrelay.evals.qa import arm_progress
from ragrelay.evals.report import percentile
from ragrelay.observe.flags import parse_prompt_versions
from ragrelay.observe.replay import prompt_versions
from schemas import Budget, Document, IngestTask, JobRequest, JobResult
from workers.deps import build_provider, close_provider
from workers.text.sections import strip_section_label
from workers.text.tokenize import sentences

TENANT = "eval-rationale"
WINDOW = 3  # at most this many consecutive abstract sentences read as one


@dataclass(frozen=True)
class Claim:
    claim_id: str
    text: str
    # gold doc id -> indices of its rationale sentences
    rationales: Mapping[str, frozenset[int]]


def read_abstracts(path: Path) -> dict[str, tuple[str, list[str]]]:
    """doc id -> (title, abstract sentences) of a SciFact release corpus."""
    out: dict[str, tuple[str, list[str]]] = {}
    for lineno, row in json_lines(path):
        try:
            doc_id = str(row["doc_id"])
            abstract = [str(s) for s in row["abstract"]]
            title = str(row.get("title") or "")
        except (KeyError, TypeError) as exc:
            raise UsageError(
                f"{path}:{lineno}: expected a SciFact corpus line "
                f'{{"doc_id", "title", "abstract": [...]}} ({exc!r})'
            ) from exc
        out[doc_id] = (title, abstract)
    if not out:
        raise UsageError(f"{path}: no abstracts")
    return out


def read_claims(path: Path, limit: int | None) -> Iterator[Claim]:
    """The claims with evidence, in file order (the first ``limit`` of them)."""
    n = 0
    for lineno, row in json_lines(path):
        try:
            claim_id, text, evidence = str(row["id"]), str(row["claim"]), row["evidence"]
            rationales = {
                str(doc): frozenset(int(i) for item in items for i in item["sentences"])
                for doc, items in evidence.items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(
                f"{path}:{lineno}: expected a SciFact claim line "
                f'{{"id", "claim", "evidence": {{doc_id: [{{"sentences": [...]}}]}}}} ({exc!r})'
            ) from exc
        if not rationales:
            continue  # not enough info: nothing to state
        yield Claim(claim_id, text, rationales)
        n += 1
        if limit is not None and n >= limit:
            return


def normalise(sentence: str) -> str:
    return " ".join(strip_section_label(" ".join(sentence.split())).split())


def rationale_hit(
    first_sentence: str,
    rationales: Mapping[str, frozenset[int]],
    abstracts: Mapping[str, tuple[str, Sequence[str]]],
) -> bool:
    """Whether ``first_sentence`` is a gold rationale sentence of a gold document."""
    have = normalise(first_sentence)
    if not have:
        return False
    for doc_id, indices in rationales.items():
        abstract = abstracts.get(doc_id, ("", []))[1]
        for i in indices:
            for start in range(max(0, i - WINDOW + 1), i + 1):
                for end in range(i + 1, min(len(abstract), start + WINDOW) + 1):
                    if normalise(" ".join(abstract[start:end])) == have:
                        return True
    return False


def score(
    claim: Claim, result: JobResult, abstracts: Mapping[str, tuple[str, Sequence[str]]]
) -> dict[str, float]:
    first = (sentences(result.answer) or [""])[0]
    first_doc = result.citations[0].doc_id if result.citations else None
    return {
        "rationale_hit": float(rationale_hit(first, claim.rationales, abstracts)),
        "doc_hit": float(first_doc in claim.rationales),
        "answer_words": float(len(result.answer.split())),
    }


def ingest_abstracts(
    client: RagrelayClient, abstracts: Mapping[str, tuple[str, Sequence[str]]], batch: int = 64
) -> int:
    docs = [
        Document(doc_id=doc_id, title=title, text=" ".join(abstract))
        for doc_id, (title, abstract) in abstracts.items()
        if abstract
    ]
    for i in range(0, len(docs), batch):
        task = IngestTask(
            run_id="eval-rationale",
            batch=i // batch,
            tenant=TENANT,
            documents=docs[i : i + batch],
        )
        client.run_task("ragrelay.ingest", task.to_dict())
    return len(docs)


@dataclass
class Arm:
    rows: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def run_claims(
    client: RagrelayClient,
    claims: Sequence[Claim],
    abstracts: Mapping[str, tuple[str, Sequence[str]]],
    budget: Budget,
    *,
    label: str = "eval rationale",
) -> Arm:
    arm = Arm()
    with arm_progress(label) as bar:
        task = bar.add_task("rationale", total=len(claims))
        for claim in claims:
            started = time.perf_counter()
            result = client.with_trace(
                client.ask(JobRequest(query=claim.text, tenant=TENANT, budget=budget))
            )
            latency = time.perf_counter() - started
            arm.versions.update(prompt_versions(result.trace))
            arm.rows.append(
                {
                    "id": claim.claim_id,
                    "claim": claim.text,
                    "answer": result.answer,
                    "citations": [c.doc_id for c in result.citations],
                    "stop_reason": result.stop_reason,
                    "iterations": result.iterations,
                    "latency_s": latency,
                    "metrics": score(claim, result, abstracts),
                }
            )
            bar.advance(task)
    return arm


def summary(rows: Sequence[Mapping[str, Any]], n_docs: int, ingest_s: float) -> dict[str, Any]:
    def metric(name: str) -> float | None:
        return round(mean(r["metrics"][name] for r in rows), 4) if rows else None

    ms = [r["latency_s"] * 1000 for r in rows]
    return {
        "claims": len(rows),
        "documents": n_docs,
        "rationale_hit": metric("rationale_hit"),
        "doc_hit": metric("doc_hit"),
        "answer_words_mean": round(mean(r["metrics"]["answer_words"] for r in rows), 2)
        if rows
        else None,
        "iterations_mean": round(mean(r["iterations"] for r in rows), 3) if rows else None,
        "accepted": round(mean(float(r["stop_reason"] == "accepted") for r in rows), 4)
        if rows
        else None,
        "p50_ms": round(percentile(ms, 50), 1) if ms else None,
        "p95_ms": round(percentile(ms, 95), 1) if ms else None,
        "ingest_seconds": round(ingest_s, 2),
    }


@click.command("rationale")
@click.option(
    "--corpus",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SciFact release corpus (.jsonl or .jsonl.gz rows with doc_id, title, abstract), "
    "ingested into a fresh temporary store.",
)
@click.option(
    "--claims",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="SciFact claims (id, claim, evidence); claims without evidence are left out.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Only the first N claims with evidence.",
)
@click.option(
    "--max-iterations",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Budget of the evaluate→revise loop per claim.",
)
@click.option(
    "--prompt-version",
    "prompt_version",
    multiple=True,
    metavar="NAME=VERSION",
    help="Compare: run the claims twice on the same store, A with the configured versions "
    "and B with these pinned on top (repeatable, e.g. generation=1 for the generator "
    "before findings were preferred).",
)
@click.option(
    "--rows",
    "rows_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one JSON row per claim (with two arms: FILE with .A and .B before its suffix).",
)
@click.option(
    "--store-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the ingested store in DIR and reuse it on the next run with the same corpus "
    "file (a full SciFact ingest takes 10-45 min on a loaded 2-core machine); default: "
    "a fresh temporary store.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
def rationale_command(
    ctx: click.Context,
    corpus: Path,
    claims: Path,
    limit: int | None,
    max_iterations: int,
    prompt_version: tuple[str, ...],
    rows_out: Path | None,
    store_dir: Path | None,
    as_json: bool,
) -> None:
    """Ask SciFact CLAIMS over CORPUS through every stage; score whether each answer's
    first sentence is a gold rationale (rationale_hit) of a gold document (doc_hit)."""
    root: Settings = settings_of(ctx)
    workers = workers_of(ctx)
    pins = parse_prompt_versions(prompt_version) if prompt_version else None
    b_workers = None
    if pins is not None:  # an unknown name or version fails now, before the ingest
        b_workers = workers.replace(
            prompts={"prompt_versions": {**workers.prompts.prompt_versions, **pins}}
        )
        from workers.web import DisabledWeb

        close_provider(build_provider(root, b_workers, DisabledWeb()))
    abstracts = read_abstracts(corpus)
    cases = list(read_claims(claims, limit))
    if not cases:
        raise UsageError(f"{claims}: no claim with evidence")
    budget = Budget(max_iterations=max_iterations)
    with tempfile.TemporaryDirectory(prefix="ragrelay-eval-rationale-") as tmp:
        data_dir = store_dir if store_dir is not None else Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = root.model_copy(update={"redis_url": None, "data_dir": data_dir})
        workers = workers.replace(store={"kind": "embedded"})
        client = RagrelayClient.from_settings(settings, workers)
        t0 = time.perf_counter()
        marker = data_dir / STORE_MARKER
        stamp = _corpus_stamp(corpus)
        if store_dir is not None and marker.exists() and json.loads(marker.read_text()) == stamp:
            n_docs = sum(1 for _, abstract in abstracts.values() if abstract)  # already in
        else:
            n_docs = ingest_abstracts(client, abstracts)
            if store_dir is not None:
                marker.write_text(json.dumps(stamp))
        ingest_s = time.perf_counter() - t0
        arms = {"A": run_claims(client, cases, abstracts, budget, label="A" if pins else "")}
        client.close()
        if b_workers is not None:
            b_workers = b_workers.replace(store={"kind": "embedded"})
            client = RagrelayClient.from_settings(settings, b_workers)  # same store
            arms["B"] = run_claims(client, cases, abstracts, budget, label="B")
            client.close()
    if b_workers is None:
        out: dict[str, Any] = summary(arms["A"].rows, n_docs, ingest_s)
        _write_rows(arms["A"].rows, rows_out)
    else:
        out = {"claims": len(cases), "documents": n_docs}
        for name, arm in arms.items():
            out[name] = {**summary(arm.rows, n_docs, ingest_s), "prompt_versions": arm.versions}
            _write_rows(
                arm.rows,
                None
                if rows_out is None
                else rows_out.with_name(f"{rows_out.stem}.{name}{rows_out.suffix}"),
            )
    if as_json:
        click.echo(json.dumps(out))
        return
    for key, value in out.items():
        click.echo(f"{key:>20}: {value}")


STORE_MARKER = "eval-rationale-corpus.json"


def _corpus_stamp(corpus: Path) -> dict[str, Any]:
    """What a kept store was ingested from: the corpus file, its size and mtime, the tenant."""
    st = corpus.stat()
    return {
        "corpus": str(corpus.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "tenant": TENANT,
    }


def _write_rows(rows: Sequence[Mapping[str, Any]], path: Path | None) -> None:
    if path is not None:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

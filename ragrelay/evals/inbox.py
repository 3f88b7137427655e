"""``ragrelay train-triage`` and ``ragrelay eval inbox``: the email agent, measured.

Composition root (may reach both sides): the ingress parses (``ragrelay.inbox``), the
worker side trains and applies the triage model (``workers.email``).

Honesty rule for ``eval inbox``: the triage model never sees an evaluated message. It is
trained inside the eval from ``--train-labels`` (default: the shared labelled inbox) minus
every evaluated message (matched by Message-ID and by content hash). When that removes
messages — the evaluated inbox *is* (part of) the training data — the eval cross-fits:
the evaluated messages are split into ``--folds`` stratified folds and each fold is run
through the pipeline with a model trained on everything but that fold. On a disjoint
held-out inbox one model, trained on all of the training labels, is used.
"""

from __future__ import annotations

import contextlib
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import click

from bus.errors import InvalidMessage, UsageError
from bus.settings import Settings
from ragrelay.cli.settings import settings_of as _settings
from ragrelay.evals import inbox_parts
from ragrelay.evals.inbox_parts import collect_filter
from ragrelay.evals.spamd import running_spamd
from ragrelay.inbox.ledger import SqliteLedger
from ragrelay.inbox.mailbox import RawMessage
from ragrelay.inbox.mbox import iter_mbox_documents
from ragrelay.inbox.parse import ParsedEmail, content_hash, parse_message
from ragrelay.inbox.process import InboxProcessor, Outcome
from ragrelay.inbox.spamfilter import SpamdClient, SpamFilter, parse_address
from schemas import Budget, Document
from workers.email.calibrate import group_folds, mail_group
from workers.email.train import cross_validate, fit, metrics, normalise_label
from workers.email.triage import LABELS, TriageModel, classify_detailed, default_model_path

REPO = Path(__file__).resolve().parents[2]
SHARED_LABELS = REPO.parent / "shared" / "data" / "emails" / "labels.jsonl"


# --- labelled data --------------------------------------------------------------------------


@dataclass
class Labelled:
    file: str
    label: str  # normalised: spam | needs_reply | no_reply
    path: Path
    raw: bytes
    parsed: ParsedEmail | None
    reason: str = ""

    @property
    def keys(self) -> set[str]:
        keys = {f"sha256:{content_hash(self.raw)}"}
        if self.parsed is not None and self.parsed.message_id:
            keys.add(self.parsed.message_id)
        return keys


def _index_dir(directory: Path) -> dict[str, Path]:
    """file name / stem (Maildir info stripped) → path, for a .eml dir or a Maildir."""
    index: dict[str, Path] = {}
    subdirs = (
        [directory / "cur", directory / "new"] if (directory / "cur").is_dir() else [directory]
    )
    for sub in subdirs:
        for path in sub.iterdir():
            if not path.is_file() or path.name.startswith("."):
                continue
            name = path.name.split(":2,", 1)[0]
            index.setdefault(name, path)
            index.setdefault(Path(name).stem, path)
    return index


def read_labelled(labels: Path, inbox: Path | None = None) -> tuple[list[Labelled], list[str]]:
    """Rows of a labels file (``{"file", "label"}``; files relative to the labels file's
    directory). With ``inbox``, files are looked up there (by name, for Maildirs too) and
    rows naming files not in it are left out. Returns (examples, problems)."""
    try:
        lines = labels.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read labels {labels}: {exc.strerror}") from exc
    index = _index_dir(inbox) if inbox is not None else {}
    out: list[Labelled] = []
    problems: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            file, label = str(row["file"]), normalise_label(str(row["label"]))
        except (ValueError, KeyError, TypeError, UsageError) as exc:
            problems.append(f"{labels}:{lineno}: {exc}")
            continue
        if inbox is not None:
            found = index.get(Path(file).name) or index.get(Path(file).stem)
            if found is None:
                problems.append(f"{labels}:{lineno}: {file} is not in {inbox}")
                continue
            path = found
        else:
            path = labels.parent / file
        try:
            raw = path.read_bytes()
        except OSError as exc:
            problems.append(f"{labels}:{lineno}: {path}: {exc.strerror}")
            continue
        try:
            parsed: ParsedEmail | None = parse_message(raw)
            reason = ""
        except InvalidMessage as exc:
            parsed, reason = None, exc.reason
        out.append(Labelled(file, label, path, raw, parsed, reason))
    return out, problems


def examples_of(items: Sequence[Labelled]) -> list[tuple[dict[str, str], str]]:
    return [(i.parsed.to_metadata()["email"], i.label) for i in items if i.parsed is not None]


# --- train-triage ---------------------------------------------------------------------------


@click.command("train-triage")
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="JSONL rows {file, label}; files relative to this file.",
)
@click.option(
    "--inbox",
    "inbox_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Look the labelled files up in this .eml dir or Maildir.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Model file (default: <data_dir>/models/triage.json, where workers read it).",
)
@click.option(
    "--cv", "folds", type=int, default=0, help="Also report K-fold cross-validated figures (K ≥ 2)."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def train_triage_command(
    ctx: click.Context,
    labels_path: Path,
    inbox_dir: Path | None,
    out_path: Path | None,
    folds: int,
    as_json: bool,
) -> None:
    """Train the offline triage classifier (spam / needs_reply / no_reply)."""
    settings = _settings(ctx)
    items, problems = read_labelled(labels_path, inbox_dir)
    for problem in problems[:20]:
        click.echo(f"skipped {problem}", err=True)
    examples = examples_of(items)
    if len(examples) < 10:
        raise UsageError(f"only {len(examples)} usable labelled messages in {labels_path}")
    started = time.perf_counter()
    model = fit(examples)
    out = out_path or default_model_path(settings.data_dir)
    model.save(out)
    summary: dict[str, Any] = {
        "model": str(out),
        "examples": len(examples),
        "per_label": {label: sum(1 for _, y in examples if y == label) for label in LABELS},
        "spam_threshold": model.spam_threshold,
        "review_threshold": model.review_threshold,
        "calibration": model.meta.get("calibration"),
        "features": len(model.vocabulary),
        "train_seconds": round(time.perf_counter() - started, 2),
    }
    if folds >= 2:
        summary["cv"] = {k: round(v, 4) for k, v in cross_validate(examples, folds=folds).items()}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"Trained on {len(examples)} messages → {out} "
            f"(spam threshold {model.spam_threshold}, review from {model.review_threshold}, "
            f"{len(model.vocabulary)} features)"
        )
        if "cv" in summary:
            cv = summary["cv"]
            click.echo(
                f"{folds}-fold CV: macro-F1 {cv['triage_macro_f1']:.3f}, spam precision "
                f"{cv['spam_precision']:.3f}, spam recall {cv['spam_recall']:.3f}, "
                f"needs_reply recall {cv['needs_reply_recall']:.3f}"
            )


# --- eval inbox -----------------------------------------------------------------------------


class CollectingMailbox:
    """The eval's mailbox: messages are handed in per fold; drafts are kept in memory."""

    name = "eval"

    def __init__(self) -> None:
        self.drafts: dict[str, EmailMessage] = {}

    def fetch(self) -> Iterator[RawMessage]:
        return iter(())

    def store_draft(self, digest: str, draft: EmailMessage) -> bool:
        if digest in self.drafts:
            return False
        self.drafts[digest] = draft
        return True

    def mark_processed(self, ref: str) -> None:
        return None

    def close(self) -> None:
        return None


def stratified_folds(items: Sequence[Labelled], folds: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    out: list[list[int]] = [[] for _ in range(folds)]
    for label in LABELS:
        members = [i for i, item in enumerate(items) if item.label == label]
        rng.shuffle(members)
        for position, index in enumerate(members):
            out[position % folds].append(index)
    return [sorted(f) for f in out]


def plan_models(
    evaluated: Sequence[Labelled],
    training: Sequence[Labelled],
    folds: int,
    split: str = "stratified",
) -> tuple[list[tuple[list[int], list[Labelled]]], int]:
    """[(indices of evaluated messages, training items for their model)], overlap count.

    ``split="group"`` (out of distribution): folds hold whole source groups (mailing list,
    else sender domain; ``workers.email.calibrate.mail_group``) and a fold's model is
    trained on no message of the fold's groups — every prediction is about a list or
    sender the model never saw. ``"stratified"``: random stratified folds (in distribution).
    """
    eval_keys: set[str] = set()
    for item in evaluated:
        eval_keys |= item.keys
    disjoint = [t for t in training if not (t.keys & eval_keys)]
    overlap = len(training) - len(disjoint)
    if overlap == 0:
        return [(list(range(len(evaluated))), list(disjoint))], 0
    if split == "group":
        fold_list = group_folds([group_of(i) for i in evaluated], folds)
    else:
        fold_list = stratified_folds(evaluated, folds)
    plans = []
    for fold in fold_list:
        fold_keys: set[str] = set()
        for index in fold:
            fold_keys |= evaluated[index].keys
        fold_groups = {group_of(evaluated[i]) for i in fold} if split == "group" else set()
        train = [
            t
            for t in (
                *disjoint,
                *(t for t in training if (t.keys & eval_keys) and not (t.keys & fold_keys)),
            )
            if group_of(t) not in fold_groups
        ]
        plans.append((fold, train))
    return plans, overlap


def group_of(item: Labelled) -> str:
    return mail_group(item.parsed.to_metadata()["email"]) if item.parsed else "unparseable"


def _archive_documents(archive: Path, exclude_ids: set[str]) -> tuple[list[Document], str]:
    """The archive's documents minus any evaluated message, and a signature of that set."""
    all_docs = list(iter_mbox_documents(archive))
    docs = [d for d in all_docs if d.metadata.get("message_id") not in exclude_ids]
    removed = sorted(d.doc_id for d in all_docs if d.metadata.get("message_id") in exclude_ids)
    stat = archive.stat()
    text = f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{removed}"
    return docs, content_hash(text.encode())


def _ingest(client: Any, docs: Sequence[Document], tenant: str, run_id: str) -> None:
    """Index documents into ``tenant`` with the ingest task (as `ragrelay ingest` does)."""
    from bus.keys import INGEST_TASK
    from schemas import IngestTask

    for start in range(0, len(docs), 64):
        payload = IngestTask(
            run_id=run_id,
            batch=start // 64,
            tenant=tenant,
            documents=list(docs[start : start + 64]),
        ).to_dict()
        client.run_task(INGEST_TASK, payload)


@click.command("inbox")
@click.option(
    "--inbox",
    "inbox_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The evaluated messages: a .eml directory or a Maildir.",
)
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="JSONL {file, label}; files relative to this file's directory.",
)
@click.option(
    "--archive",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="mbox(.gz) knowledge base ingested before the run.",
)
@click.option("--limit", type=int, default=None, help="Evaluate the first N labelled messages.")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--train-labels",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help=f"Labelled training data (default: {SHARED_LABELS} if present).",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Use this trained model instead of training (must not have seen the evaluated messages).",
)
@click.option(
    "--folds",
    type=int,
    default=5,
    show_default=True,
    help="Cross-fitting folds when training data overlaps the evaluated inbox.",
)
@click.option("--tenant", default="eval-inbox", show_default=True)
@click.option(
    "--window",
    type=int,
    default=1,
    show_default=True,
    help="Jobs in flight at once (embedded mode runs them in one thread: >1 only "
    "adds queueing to the latency figures).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Embedded state for the run (default: a fresh temp dir; reusing one skips "
    "re-ingesting the same archive).",
)
@click.option(
    "--max-iterations",
    type=int,
    default=None,
    help="Evaluate→rewrite loops per email job (default: the Budget default).",
)
@click.option(
    "--split",
    type=click.Choice(["group", "stratified"]),
    default="group",
    show_default=True,
    help="Cross-fitting folds: 'group' = whole mailing lists / sender domains per fold, "
    "never seen in training (out of distribution); 'stratified' = random folds.",
)
@click.option(
    "--spamd",
    "spamd",
    default=None,
    metavar="HOST:PORT|auto",
    help="Ask this SpamAssassin spamd for every message ('auto': start a private one on a "
    "free loopback port) and combine its verdict with the model.",
)
@click.option(
    "--trust-spam-headers",
    is_flag=True,
    help="Read X-Spam-Status/X-Spam-Flag as an upstream filter's verdict (only if your MTA "
    "strips incoming copies: senders can forge them).",
)
@click.option(
    "--authserv-id",
    default="",
    help="Trust Authentication-Results headers from this authserv-id only.",
)
@click.option(
    "--in-distribution/--no-in-distribution",
    default=True,
    show_default=True,
    help="Also report triage on random stratified folds (trains --folds more models).",
)
def eval_inbox_command(
    inbox_dir: Path,
    labels_path: Path,
    archive: Path,
    limit: int | None,
    as_json: bool,
    train_labels: Path | None,
    model_path: Path | None,
    folds: int,
    tenant: str,
    window: int,
    data_dir: Path | None,
    max_iterations: int | None,
    split: str,
    spamd: str | None,
    trust_spam_headers: bool,
    authserv_id: str,
    in_distribution: bool,
) -> None:
    """Triage + drafts over a labelled inbox through the whole pipeline (embedded).

    Main figures are out of distribution by default (--split group); the filter alone, the
    model alone and both combined are reported under filter_only / model_only / combined,
    the random-fold figures under in_distribution."""
    if spamd is not None and spamd != "auto":
        parse_address(spamd)  # a bad address is a usage error before any work
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="ragrelay-eval-inbox-"))
        address = stack.enter_context(running_spamd()) if spamd == "auto" else spamd
        spam_filter = SpamFilter(
            spamd=SpamdClient.from_address(address) if address else None,
            trust_headers=trust_spam_headers,
            authserv_id=authserv_id,
        )
        result = run_eval(
            inbox_dir=inbox_dir,
            labels_path=labels_path,
            archive=archive,
            limit=limit,
            train_labels=train_labels,
            model_path=model_path,
            folds=folds,
            tenant=tenant,
            window=window,
            data_dir=data_dir or Path(tmp),
            max_iterations=max_iterations,
            split=split,
            spam_filter=spam_filter if spam_filter.enabled else None,
            in_distribution=in_distribution,
        )
    if as_json:
        click.echo(json.dumps(result))
        return
    for key, value in result.items():
        click.echo(f"{key:>24}: {value}")


def run_eval(
    *,
    inbox_dir: Path,
    labels_path: Path,
    archive: Path,
    limit: int | None,
    train_labels: Path | None,
    model_path: Path | None,
    folds: int,
    tenant: str,
    window: int,
    data_dir: Path,
    max_iterations: int | None = None,
    split: str = "group",
    spam_filter: SpamFilter | None = None,
    in_distribution: bool = False,
) -> dict[str, Any]:
    from ragrelay.client import RagrelayClient

    evaluated, problems = read_labelled(labels_path, inbox_dir)
    if limit is not None:
        evaluated = evaluated[:limit]
    if not evaluated:
        raise UsageError(f"no labelled messages of {labels_path} found in {inbox_dir}")

    # -- the triage model(s): never trained on an evaluated message -------------------------
    started = time.perf_counter()
    plans: list[tuple[list[int], TriageModel | Path]]
    overlap = 0
    id_figures: dict[str, Any] | None = None
    verdicts: dict[int, dict[str, str]] = {}
    filter_seconds = 0.0
    if spam_filter is not None:
        started_filter = time.perf_counter()
        verdicts = collect_filter(evaluated, spam_filter.metadata)
        filter_seconds = time.perf_counter() - started_filter
    emails = {
        i: {**item.parsed.to_metadata()["email"], **verdicts.get(i, {})}
        for i, item in enumerate(evaluated)
        if item.parsed is not None
    }
    started = time.perf_counter()
    if model_path is not None:
        plans = [(list(range(len(evaluated))), model_path)]
        training_source = f"given model {model_path}"
    else:
        source = train_labels or (SHARED_LABELS if SHARED_LABELS.exists() else None)
        if source is None:
            raise UsageError("no training labels: pass --train-labels or --model")
        training, _ = read_labelled(source)
        model_plans, overlap = plan_models(evaluated, training, max(2, folds), split)
        plans = [(idx, fit(examples_of(train), folds=3)) for idx, train in model_plans]
        training_source = str(source)
        if in_distribution and overlap and split == "group":
            id_plans, _ = plan_models(evaluated, training, max(2, folds), "stratified")
            id_figures = inbox_parts.in_distribution(evaluated, id_plans, emails)
    train_seconds = time.perf_counter() - started

    settings = Settings(redis_url=None, data_dir=data_dir)
    settings.ensure_data_dir()
    model_file = default_model_path(settings.data_dir)
    client = RagrelayClient.from_settings(settings)
    run_id = uuid.uuid4().hex[:12]
    ledger = SqliteLedger(data_dir / "inbox" / f"eval-ledger-{run_id}.sqlite3")
    mailbox = CollectingMailbox()
    outcomes: dict[int, Outcome] = {}
    direct: dict[int, str] = {}
    model_only: dict[int, str] = {}
    by_raw = {item.raw: verdicts[i] for i, item in enumerate(evaluated) if i in verdicts}
    try:
        started = time.perf_counter()
        exclude = {i.parsed.message_id for i in evaluated if i.parsed and i.parsed.message_id}
        docs, signature = _archive_documents(archive, exclude)
        documents = len(docs)
        marker = data_dir / "eval-inbox-ingested.json"
        previous = json.loads(marker.read_text()) if marker.exists() else {}
        ingest_reused = previous.get("signature") == signature and previous.get("tenant") == tenant
        if not ingest_reused:
            _ingest(client, docs, tenant, f"eval-{signature[:12]}")
            marker.write_text(
                json.dumps({"signature": signature, "tenant": tenant, "documents": documents})
            )
        ingest_seconds = time.perf_counter() - started

        budget = Budget(max_iterations=max_iterations) if max_iterations else Budget()
        processor = InboxProcessor(
            mailbox,
            ledger,
            client,
            tenant=tenant,
            window=window,
            job_timeout_s=300.0,
            budget=budget,
            spam_filter=(lambda raw: by_raw.get(raw, {})) if verdicts else None,
        )
        run_seconds = 0.0
        for indices, model in plans:
            if isinstance(model, TriageModel):
                model.save(model_file)
                path = model_file
            else:
                path = model
                model_file.parent.mkdir(parents=True, exist_ok=True)
                model_file.write_bytes(model.read_bytes())
            for index in indices:
                if index in emails:
                    direct[index] = classify_detailed(emails[index], path).label
                    model_only[index] = classify_detailed(
                        inbox_parts.without_filter(emails[index]), path
                    ).label
            batch = [RawMessage(str(i), evaluated[i].raw) for i in indices]
            started = time.perf_counter()
            for outcome in processor.run_once(batch):
                outcomes[int(outcome.ref)] = outcome
            run_seconds += time.perf_counter() - started
    finally:
        client.close()
        ledger.close()

    truth = [item.label for item in evaluated]
    predicted = [
        (outcomes[i].triage if i in outcomes else None) or "none" for i in range(len(evaluated))
    ]
    figures = metrics(truth, predicted)
    direct_figures = metrics(truth, [direct.get(i, "none") for i in range(len(evaluated))])
    drafted = [o for o in outcomes.values() if o.status == "drafted"]
    grounded = [o for o in drafted if o.draft_kind == "grounded"]
    n = len(evaluated)
    components: dict[str, Any] = {
        "model_only": inbox_parts.spam_figures(truth, [model_only.get(i, "none") for i in range(n)])
    }
    if verdicts:
        components["filter_only"] = inbox_parts.spam_figures(
            truth, [inbox_parts.filter_label(verdicts.get(i, {})) for i in range(n)]
        )
        components["combined"] = inbox_parts.spam_figures(
            truth, [direct.get(i, "none") for i in range(n)]
        )
    latencies = [o.elapsed_ms for o in outcomes.values() if o.status in ("drafted", "no_draft")]
    return {
        "messages": len(evaluated),
        "triage_macro_f1": round(figures["triage_macro_f1"], 4),
        "spam_precision": round(figures["spam_precision"], 4),
        "spam_recall": round(figures["spam_recall"], 4),
        "needs_reply_recall": round(figures["needs_reply_recall"], 4),
        "needs_reply_precision": round(figures["needs_reply_precision"], 4),
        "no_reply_f1": round(figures["no_reply_f1"], 4),
        "triage_accuracy": round(figures["triage_accuracy"], 4),
        "triage_macro_f1_direct": round(direct_figures["triage_macro_f1"], 4),
        "drafts": len(drafted),
        "drafts_grounded": round(len(grounded) / len(drafted), 4) if drafted else 0.0,
        "unparseable": sum(1 for o in outcomes.values() if o.status == "unparseable"),
        "failed": sum(1 for o in outcomes.values() if o.status == "failed"),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(_percentile(latencies, 95), 1) if latencies else None,
        "emails_per_minute": round(len(evaluated) / run_seconds * 60.0, 1) if run_seconds else None,
        "run_seconds": round(run_seconds, 2),
        "ingest_seconds": round(ingest_seconds, 2),
        "archive_documents": documents,
        "ingest_reused": ingest_reused,
        "train_seconds": round(train_seconds, 2),
        "models": len(plans),
        "training": training_source,
        "training_overlap_removed": overlap,
        "window": window,
        "max_iterations": budget.max_iterations,
        "label_problems": len(problems),
        "split": split if overlap else "disjoint",
        "review_share": round(figures["review_share"], 4),
        "review": sum(1 for p in predicted if p == "review"),
        "spam_thresholds": [
            [m.spam_threshold, m.review_threshold] for _, m in plans if isinstance(m, TriageModel)
        ],
        "spam_filter": (
            "spamd" if spam_filter and spam_filter.spamd else "headers" if spam_filter else None
        ),
        "filter_seconds": round(filter_seconds, 2),
        **components,
        **({"in_distribution": id_figures} if id_figures else {}),
        **inbox_parts.draft_figures(list(outcomes.values())),
    }


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[rank]


__all__ = [
    "eval_inbox_command",
    "plan_models",
    "read_labelled",
    "run_eval",
    "stratified_folds",
    "train_triage_command",
]

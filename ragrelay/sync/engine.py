"""One sync run: diff what a source holds now against its manifest, send the changed and
deleted documents through the documents ingest (``ragrelay.documents`` on the ``ingest``
queue, or in this process when embedded), wait for the outcomes, update the manifest.

Unchanged content is never re-read by a worker, re-parsed or re-embedded: it is not sent.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bus.documents import DocumentRegistry
from bus.errors import UsageError
from bus.keys import DOCUMENTS_TASK
from ragrelay.sync.manifest import Entry, Manifest
from schemas import DocumentItem, DocumentsTask, IngestRecord


@dataclass
class Candidate:
    """A document the source holds now: its id, hash, and how to build its item."""

    doc_id: str
    content_hash: str
    updated: str | None
    item: Callable[[DocumentRegistry, str, int], DocumentItem]  # (registry, ingest id, n)


@dataclass
class SyncReport:
    source: str
    tenant: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    renamed: int = 0  # same content under a new id (not in added/deleted)
    reembedded: int = 0  # of the renames, those the store could not move (embedded again)
    failures: list[dict[str, str]] = field(default_factory=list)
    ingest_id: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def run_sync(
    client: Any,
    *,
    source: str,
    tenant: str,
    manifest: Manifest,
    current: Sequence[Candidate],
    unchanged_ids: Sequence[str] = (),
    all_ids: set[str] | None = None,
    timeout_s: float = 3600,
    max_pages: int = 2_000,
    max_file_bytes: int = 50 * 1024 * 1024,
    ocr: bool = False,
) -> SyncReport:
    """``current``: candidates that may have changed; ``unchanged_ids``: known unchanged
    without reading them (an ``updated`` column); ``all_ids``: every id the source holds
    (deletions are the manifest's ids not in it; default: ids of ``current``)."""
    started = time.perf_counter()
    report = SyncReport(source=source, tenant=tenant)
    holds = all_ids if all_ids is not None else {c.doc_id for c in current}
    report.unchanged = len(unchanged_ids)
    changed: list[Candidate] = []
    for cand in current:
        old = manifest.entries.get(cand.doc_id)
        if old is not None and old.hash == cand.content_hash:
            report.unchanged += 1
            if cand.updated != old.updated:
                manifest.entries[cand.doc_id] = Entry(cand.content_hash, cand.updated)
        else:
            changed.append(cand)
    gone = sorted(set(manifest.entries) - holds)
    renames = _renames(manifest, changed, gone)
    gone = [g for g in gone if g not in renames.values()]
    if changed or gone:
        record = _ingest(
            client, tenant, changed, gone, renames, timeout_s, max_pages, max_file_bytes, ocr
        )
        report.ingest_id = record.ingest_id
        by_id = {c.doc_id: c for c in changed}
        for f in record.files:
            if f.outcome == "deleted" or (f.outcome == "skipped" and f.doc_id in gone):
                manifest.entries.pop(f.doc_id, None)
                report.deleted += 1
            elif f.doc_id in renames and f.outcome in ("renamed", "indexed", "replaced"):
                manifest.entries.pop(renames[f.doc_id], None)
                cand = by_id[f.doc_id]
                manifest.entries[f.doc_id] = Entry(cand.content_hash, cand.updated)
                report.renamed += 1
                report.reembedded += f.outcome != "renamed"
            elif f.outcome in ("indexed", "replaced", "unchanged"):
                was = manifest.entries.get(f.doc_id)
                cand = by_id[f.doc_id]
                manifest.entries[f.doc_id] = Entry(cand.content_hash, cand.updated)
                if was is None and f.outcome != "unchanged":
                    report.added += 1
                elif f.outcome == "unchanged":
                    report.unchanged += 1
                else:
                    report.updated += 1
            else:
                report.failed += 1
                report.failures.append({"doc_id": f.doc_id, "name": f.name, "reason": f.reason})
    manifest.save()
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _renames(manifest: Manifest, changed: list[Candidate], gone: list[str]) -> dict[str, str]:
    """New doc id -> gone doc id, for new documents whose content a gone one had."""
    by_hash: dict[str, list[str]] = {}
    for doc_id in gone:
        by_hash.setdefault(manifest.entries[doc_id].hash, []).append(doc_id)
    out: dict[str, str] = {}
    for cand in changed:
        olds = by_hash.get(cand.content_hash)
        if cand.doc_id not in manifest.entries and olds:
            out[cand.doc_id] = olds.pop(0)
    return out


def _ingest(
    client: Any,
    tenant: str,
    changed: list[Candidate],
    gone: list[str],
    renames: dict[str, str],
    timeout_s: float,
    max_pages: int,
    max_file_bytes: int,
    ocr: bool,
) -> IngestRecord:
    registry = DocumentRegistry(client.redis, client.settings.key_prefix)
    ingest_id = uuid.uuid4().hex
    items = [c.item(registry, ingest_id, n) for n, c in enumerate(changed)]
    for item in items:
        item.rename_from = renames.get(item.doc_id)
    task = DocumentsTask(
        ingest_id=ingest_id,
        tenant=tenant,
        items=items,
        delete=gone,
        max_pages=max_pages,
        max_file_bytes=max_file_bytes,
        ocr=ocr,
    )
    if client.settings.embedded:
        client.app.tasks[DOCUMENTS_TASK].apply(args=[task.to_dict()])
    else:
        client.app.send_task(
            DOCUMENTS_TASK, args=[task.to_dict()], queue="ingest", task_id=ingest_id
        )
    deadline = time.monotonic() + timeout_s
    while True:
        record = registry.ingest(ingest_id)
        if record is not None and record.finished_at is not None:
            return record
        if time.monotonic() > deadline:
            raise UsageError(
                f"sync ingest {ingest_id} not done in {timeout_s:g} s; is `ragrelay worker "
                "ingest` running? Run the same command again to resume."
            )
        time.sleep(0.2)

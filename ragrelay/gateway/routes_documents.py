"""/v1/documents and /v1/ingests: upload files or texts, watch their ingest, list, read and
delete documents. A key sees only its own tenant's documents (another tenant's doc id is
simply not found) and ingests (403). docs/documents.md.

Uploads stream to disk (Starlette spools multipart files past 1 MB), are capped in bytes
(413 naming the limit), hashed and copied into Redis in 1 MB pieces for the ``ingest``
queue's workers: no file is ever held whole in the gateway's memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import IO, Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from bus.documents import DocumentRegistry
from bus.keys import DOCUMENTS_TASK
from ragrelay.gateway.auth import Svc, Tenant, bearer
from ragrelay.gateway.documents_config import DocumentsConfig
from ragrelay.gateway.documents_models import (
    DOC_ID_PATTERN,
    Deleted,
    DocumentPage,
    IngestAccepted,
    IngestLinks,
    TextDocument,
)
from ragrelay.gateway.errors import InvalidField, field_errors
from ragrelay.gateway.keys_store import key_id_of
from ragrelay.gateway.models import ErrorBody, ValidationErrorBody
from ragrelay.gateway.services import Services
from ragrelay.gateway.sse import comment, format_event
from ragrelay.gateway.streams import LeasedEventStream
from schemas import DocumentItem, DocumentRecord, DocumentsTask, IngestRecord

router = APIRouter(tags=["documents"])

DocIdPath = Annotated[str, Path(min_length=1, max_length=200, pattern=DOC_ID_PATTERN)]
IngestIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    404: {"model": ErrorBody, "description": "no such document or ingest"},
    422: {"model": ValidationErrorBody, "description": "invalid input; `errors` name the fields"},
    429: {"model": ErrorBody, "description": "rate limit exceeded; see Retry-After"},
}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    413: {
        "model": ErrorBody,
        "description": "the upload, its file count or the tenant's stored bytes exceed "
        "a limit (named in `detail`)",
    },
    415: {"model": ErrorBody, "description": "neither multipart/form-data nor JSON"},
    429: {
        "model": ErrorBody,
        "description": "rate limit, or the tenant's document quota, exceeded (named in `detail`)",
    },
}

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "one or more files (PDF, DOCX, HTML, Markdown, "
                        "text, .eml); each becomes a document named after its file",
                    },
                    "source": {"type": "string", "maxLength": 64},
                },
            }
        },
        "application/json": {"schema": TextDocument.model_json_schema()},
    },
}


def _config(request: Request) -> DocumentsConfig:
    found: DocumentsConfig = request.app.state.documents_config
    return found


Cfg = Annotated[DocumentsConfig, Depends(_config)]


def registry_of(svc: Services) -> DocumentRegistry:
    return DocumentRegistry(svc.redis, svc.settings.key_prefix)


def doc_id_for(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.@-]+", "_", name.rsplit("/", 1)[-1]).strip("._")[:200]
    return cleaned or "document"


def _send(request: Request, task: DocumentsTask) -> None:
    send_task(request.app.state, task)


def send_task(state: Any, task: DocumentsTask) -> None:
    """Publish on the ``ingest`` queue (the Celery app is built on first use); ``state`` is
    the gateway app's ``state`` (also used by ``/mcp``'s document tools)."""
    app = getattr(state, "documents_celery", None)
    if app is None:
        from bus.app import create_app

        app = state.documents_celery = create_app(state.services.settings)
    app.send_task(
        DOCUMENTS_TASK,
        args=[task.to_dict()],
        queue="ingest",
        task_id=task.ingest_id,
        argsrepr=f"(documents {task.ingest_id})",
        kwargsrepr="{}",
    )


@router.post(
    "/v1/documents",
    status_code=202,
    response_model=IngestAccepted,
    responses=UPLOAD_ERRORS,
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def upload_documents(request: Request, tenant: Tenant, svc: Svc, cfg: Cfg) -> IngestAccepted:
    """Upload files (multipart ``files``) or one JSON text document; answers 202 with the
    ingest id. Files are parsed and indexed by the ingest workers; watch
    ``/v1/ingests/{id}/events``. The same bytes under the same doc id are a no-op; new
    bytes replace the document's chunks in one step."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    ingest_id = uuid.uuid4().hex
    registry = registry_of(svc)
    if kind == "multipart/form-data":
        items = await _files(request, registry, tenant, ingest_id, cfg)
    elif kind == "application/json" or kind.endswith("+json"):
        items = [await _text(request, cfg)]
    else:
        raise HTTPException(415, "send multipart/form-data (files) or application/json (text)")
    return await run_in_threadpool(
        accept_items, request.app.state, svc, tenant, ingest_id, items, cfg
    )


def accept_items(
    state: Any,
    svc: Services,
    tenant: str,
    ingest_id: str,
    items: list[DocumentItem],
    cfg: DocumentsConfig,
) -> IngestAccepted:
    """Check the tenant's quotas, record the ingest and queue it (blocking Redis calls)."""
    return queue_items(
        registry_of(svc),
        tenant,
        ingest_id,
        items,
        cfg,
        svc.settings.result_ttl_s,
        lambda task: send_task(state, task),
    )


def queue_items(
    registry: DocumentRegistry,
    tenant: str,
    ingest_id: str,
    items: list[DocumentItem],
    cfg: DocumentsConfig,
    ttl_s: int,
    send: Callable[[DocumentsTask], None],
) -> IngestAccepted:
    """``accept_items`` over any registry and task sender (``ragrelay mcp`` on stdio)."""
    _check_quota(registry, tenant, items, cfg)
    task = DocumentsTask(
        ingest_id=ingest_id,
        tenant=tenant,
        items=items,
        max_pages=cfg.max_pages,
        max_file_bytes=cfg.max_file_bytes,
        parse_timeout_s=cfg.parse_timeout_s,
        ocr=cfg.ocr,
    )
    record = IngestRecord(
        ingest_id=ingest_id, tenant=tenant, total=len(items), created_at=time.time()
    )
    registry.save_ingest(record, ttl_s=ttl_s)
    send(task)
    return IngestAccepted(
        ingest_id=ingest_id,
        files=len(items),
        doc_ids=[i.doc_id for i in items],
        links=IngestLinks(
            self=f"/v1/ingests/{ingest_id}", events=f"/v1/ingests/{ingest_id}/events"
        ),
    )


async def _text(request: Request, cfg: DocumentsConfig) -> DocumentItem:
    try:
        raw = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidField("body", "not valid JSON") from exc
    try:
        doc = TextDocument.model_validate(raw)
    except ValidationError as exc:
        err = field_errors(exc.errors(), ("body",))[0]
        raise InvalidField(err["field"], err["message"]) from exc
    return text_item(doc, cfg)


def text_item(doc: TextDocument, cfg: DocumentsConfig) -> DocumentItem:
    """One JSON text document as an ingest item (its doc id defaults to its text's hash)."""
    if len(doc.text) > cfg.max_text_chars:
        raise InvalidField("body.text", f"longer than {cfg.max_text_chars} characters")
    if not doc.text.strip():
        raise InvalidField("body.text", "blank text")
    data = doc.text.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(data).hexdigest()
    meta_hash = hashlib.sha256(
        json.dumps([doc.title, doc.metadata], sort_keys=True).encode()
    ).hexdigest()[:16]
    return DocumentItem(
        doc_id=doc.doc_id or f"text-{digest[:16]}",
        title=doc.title,
        text=doc.text,
        size=len(data),
        content_hash=f"{digest}:{meta_hash}",
        source=doc.source,
        metadata=doc.metadata,
    )


async def _files(
    request: Request,
    registry: DocumentRegistry,
    tenant: str,
    ingest_id: str,
    cfg: DocumentsConfig,
) -> list[DocumentItem]:
    try:
        form = await request.form(max_files=cfg.max_files, max_fields=20)
    except StarletteHTTPException as exc:  # "Too many files", malformed bodies, 413
        if exc.status_code == 413:
            raise  # the body limit, counted as the body streams (bodylimit.py)
        if "Too many files" in str(exc.detail):
            raise HTTPException(413, f"more than {cfg.max_files} files in one upload") from exc
        raise InvalidField("body", str(exc.detail)) from exc
    except (ValueError, KeyError) as exc:
        raise InvalidField("body", f"malformed multipart body: {exc}") from exc
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise InvalidField("body.files", "no files: send one or more `files` parts")
        source = form.get("source")
        source = source if isinstance(source, str) and 0 < len(source) <= 64 else "upload"
        items: list[DocumentItem] = []
        seen: set[str] = set()
        for n, upload in enumerate(files):
            name = upload.filename or f"file-{n}"
            doc_id = doc_id_for(name)
            if doc_id in seen:
                raise InvalidField("body.files", f"two files map to the doc id {doc_id!r}")
            seen.add(doc_id)
            items.append(
                await run_in_threadpool(
                    _stash, registry, upload, name, doc_id, source, ingest_id, n, cfg
                )
            )
        return items
    finally:
        await form.close()


def _stash(
    registry: DocumentRegistry,
    upload: UploadFile,
    name: str,
    doc_id: str,
    source: str,
    ingest_id: str,
    n: int,
    cfg: DocumentsConfig,
) -> DocumentItem:
    """Hash the spooled file and copy it into Redis in pieces (or refuse it, per file)."""
    fh: IO[bytes] = upload.file
    fh.seek(0, 2)
    size = fh.tell()
    fh.seek(0)
    item = DocumentItem(doc_id=doc_id, name=name, size=size, source=source)
    if size > cfg.max_file_bytes:
        item.refused = f"{size} bytes; the limit is {cfg.max_file_bytes} bytes per file"
        return item
    digest = hashlib.sha256()
    while piece := fh.read(1024 * 1024):
        digest.update(piece)
    fh.seek(0)
    item.content_hash = digest.hexdigest()
    item.blob_key = registry.blob_key(ingest_id, n)
    registry.put_blob(item.blob_key, fh, ttl_s=cfg.blob_ttl_s)
    return item


def _check_quota(
    registry: DocumentRegistry, tenant: str, items: list[DocumentItem], cfg: DocumentsConfig
) -> None:
    new = [i for i in items if not i.refused and registry.get(tenant, i.doc_id) is None]
    count = registry.count(tenant)
    if count + len(new) > cfg.tenant_max_documents:
        _drop_blobs(registry, items)
        raise HTTPException(
            429,
            f"document quota of tenant {tenant!r} exceeded: {count} stored + {len(new)} new "
            f"> {cfg.tenant_max_documents} documents",
        )
    stored = registry.stored_bytes(tenant)
    adding = sum(i.size for i in items if not i.refused)
    if stored + adding > cfg.tenant_max_bytes:
        _drop_blobs(registry, items)
        raise HTTPException(
            413,
            f"storage quota of tenant {tenant!r} exceeded: {stored} bytes stored + {adding} "
            f"uploaded > {cfg.tenant_max_bytes} bytes",
        )


def _drop_blobs(registry: DocumentRegistry, items: list[DocumentItem]) -> None:
    for item in items:
        if item.blob_key:
            registry.drop_blob(item.blob_key)


def owned_ingest(svc: Services, ingest_id: str, tenant: str) -> IngestRecord:
    record = registry_of(svc).ingest(ingest_id)
    if record is None:
        raise HTTPException(404, f"no ingest {ingest_id}")
    if record.tenant != tenant:
        raise HTTPException(403, "this ingest belongs to another tenant")
    return record


@router.get(
    "/v1/ingests/{ingest_id}",
    response_model=IngestRecord,
    responses={**ERRORS, 403: {"model": ErrorBody, "description": "another tenant's ingest"}},
)
def get_ingest(ingest_id: IngestIdPath, tenant: Tenant, svc: Svc) -> IngestRecord:
    """The ingest's status and each file's outcome (with the reason of every skipped file)."""
    return owned_ingest(svc, ingest_id, tenant)


@router.get(
    "/v1/ingests/{ingest_id}/events",
    responses={
        **ERRORS,
        403: {"model": ErrorBody, "description": "another tenant's ingest"},
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`status`, one `file` event per file outcome, then `done` "
            "with the whole ingest record",
        },
    },
    response_class=StreamingResponse,
)
def ingest_events(
    ingest_id: IngestIdPath,
    tenant: Tenant,
    svc: Svc,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> LeasedEventStream:
    """Progress of the ingest as Server-Sent Events, ending with ``event: done``."""
    owned_ingest(svc, ingest_id, tenant)
    cfg = svc.config
    admission = svc.streams.admit(tenant, key_id_of(creds.credentials) if creds else None)
    if admission.lease is None:
        raise HTTPException(
            429, admission.refused, headers={"Retry-After": str(cfg.sse_retry_after_s)}
        )
    frames = _ingest_frames(
        svc.aredis,
        registry_of(svc).events_key(ingest_id),
        block_ms=cfg.sse_block_ms,
        keepalive_s=cfg.sse_keepalive_s,
        max_s=cfg.sse_max_s,
    )
    return LeasedEventStream(
        frames,
        limiter=svc.streams,
        lease=admission.lease,
        retry_after_s=cfg.sse_retry_after_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _ingest_frames(
    client: aioredis.Redis, stream: str, *, block_ms: int, keepalive_s: float, max_s: float
) -> AsyncGenerator[bytes, None]:
    last = "0-0"
    started = last_sent = time.monotonic()
    yield b"retry: 2000\n\n"
    while True:
        rows: Any = await client.xread({stream: last}, count=100, block=block_ms)
        for _key, entries in rows or []:
            for entry_id, fields in entries:
                last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                kind = fields.get(b"type", b"progress").decode()
                yield format_event(fields.get(b"data", b"{}").decode(), event=kind, event_id=last)
                last_sent = time.monotonic()
                if kind == "done":
                    return
        now = time.monotonic()
        if now - started > max_s:
            yield format_event(
                '{"detail": "events stream closed after its time limit"}', event="timeout"
            )
            return
        if now - last_sent > keepalive_s:
            yield comment("keepalive")
            last_sent = now
        if not rows:
            await asyncio.sleep(0)


@router.get("/v1/documents", response_model=DocumentPage, responses=ERRORS)
def list_documents(
    tenant: Tenant,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[
        str | None, Query(min_length=1, max_length=200, description="doc id to start after")
    ] = None,
    source: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    format: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    meta: Annotated[
        list[str] | None,
        Query(
            max_length=8,
            description="metadata filter `key=value` (repeatable; all must match; the "
            "value compares to the metadata value as text)",
        ),
    ] = None,
) -> DocumentPage:
    """The tenant's documents in doc-id order, up to ``limit`` per page, filtered by
    ``source``, ``format`` and ``meta``. A filtered page scans at most 20 x ``limit``
    records; ``next_after`` continues the scan where it stopped."""
    wanted: list[tuple[str, str]] = []
    for pair in meta or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidField("query.meta", f"{pair[:80]!r}: expected key=value")
        wanted.append((key, value))

    def keep(r: DocumentRecord) -> bool:
        return (
            (source is None or r.source == source)
            and (format is None or r.format == format)
            and all(k in r.metadata and _as_text(r.metadata[k]) == v for k, v in wanted)
        )

    registry = registry_of(svc)
    kept: list[DocumentRecord] = []
    cursor, scanned, exhausted = after, 0, False
    while len(kept) < limit and scanned < 20 * limit:
        page = registry.page(tenant, after=cursor, limit=limit)
        for r in page:
            scanned += 1
            cursor = r.doc_id
            if keep(r):
                kept.append(r)
                if len(kept) == limit:
                    break
        if len(page) < limit and (not page or cursor == page[-1].doc_id):
            exhausted = True
            break
    return DocumentPage(documents=kept, next_after=None if exhausted else cursor)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@router.get("/v1/documents/{doc_id}", response_model=DocumentRecord, responses=ERRORS)
def get_document(doc_id: DocIdPath, tenant: Tenant, svc: Svc) -> DocumentRecord:
    """Metadata, content hash, chunk count, source and ingest time of one document."""
    record = registry_of(svc).get(tenant, doc_id)
    if record is None:
        raise HTTPException(404, f"no document {doc_id}")
    return record


@router.delete(
    "/v1/documents/{doc_id}",
    response_model=Deleted,
    responses={
        **ERRORS,
        202: {"model": Deleted, "description": "queued; the workers have not confirmed yet"},
    },
)
def delete_document(request: Request, doc_id: DocIdPath, tenant: Tenant, svc: Svc, cfg: Cfg) -> Any:
    """Delete the document's chunks from the store and its record. Answers 200 once the
    ingest workers confirm (within ``delete_wait_s``), else 202 with the ingest to watch."""
    deleted = remove_document(request.app.state, svc, tenant, doc_id, cfg)
    if deleted.deleted:
        return deleted
    from fastapi.responses import JSONResponse

    return JSONResponse(deleted.model_dump(), status_code=202)


def remove_document(
    state: Any, svc: Services, tenant: str, doc_id: str, cfg: DocumentsConfig
) -> Deleted:
    """Queue the deletion of the tenant's document and wait up to ``delete_wait_s`` for the
    workers (``deleted`` false: not confirmed yet). Another tenant's doc id is a 404."""
    return queue_removal(
        registry_of(svc),
        tenant,
        doc_id,
        cfg,
        svc.settings.result_ttl_s,
        lambda task: send_task(state, task),
    )


def queue_removal(
    registry: DocumentRegistry,
    tenant: str,
    doc_id: str,
    cfg: DocumentsConfig,
    ttl_s: int,
    send: Callable[[DocumentsTask], None],
) -> Deleted:
    """``remove_document`` over any registry and task sender (``ragrelay mcp`` on stdio)."""
    if registry.get(tenant, doc_id) is None:
        raise HTTPException(404, f"no document {doc_id}")
    ingest_id = uuid.uuid4().hex
    registry.save_ingest(
        IngestRecord(ingest_id=ingest_id, tenant=tenant, total=1, created_at=time.time()),
        ttl_s=ttl_s,
    )
    send(DocumentsTask(ingest_id=ingest_id, tenant=tenant, delete=[doc_id]))
    deadline = time.monotonic() + cfg.delete_wait_s
    while time.monotonic() < deadline:
        record = registry.ingest(ingest_id)
        if record is not None and record.finished_at is not None:
            chunks = record.files[0].chunks if record.files else 0
            return Deleted(doc_id=doc_id, deleted=True, chunks=chunks, ingest_id=ingest_id)
        time.sleep(0.05)
    return Deleted(doc_id=doc_id, deleted=False, ingest_id=ingest_id)

"""The documents API over real uvicorn, a real redis-server and real worker processes
(orchestrator, the four stages, and an ingest worker): upload a folder of PDF, DOCX and
HTML with bad files among them, watch the progress stream, ask and get the page and
section cited, re-upload, replace, delete and prove the deleted document is no longer
cited; tenant isolation and the quotas."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bus.settings import Settings
from ragrelay.gateway import GatewayConfig, create_app
from ragrelay.gateway.documents_config import DocumentsConfig
from ragrelay.gateway.keys_store import ApiKeyStore
from tests.conftest import REPO
from tests.integration.test_gateway import parse_sse
from tests.interop.support import serve_in_thread
from tests.support.cluster import Cluster
from tests.support.docfiles import HTML_PAGE, make_docx, make_pdf
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.integration

PUMP_Q = "How often must the impeller of the Quasar pump be replaced?"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("documents-api")
    server = RedisServer(root / "redis").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGRELAY_")}
    env.update(
        PYTHONPATH=str(REPO),
        RAGRELAY_DATA_DIR=str(root / "data"),
        RAGRELAY_REDIS_URL=server.url,
        RAGRELAY_HEARTBEAT_DIR=str(root / "heartbeats"),
    )
    cluster = Cluster(env, root / "logs").start_all()
    settings = Settings(redis_url=server.url, heartbeat_dir=root / "heartbeats")
    keys = ApiKeyStore(server.client())
    try:
        with serve_in_thread(
            create_app(settings, GatewayConfig(rate_per_s=1000, burst=1000))
        ) as url:
            yield {
                "url": url,
                "acme": {"Authorization": f"Bearer {keys.create('acme')[1]}"},
                "globex": {"Authorization": f"Bearer {keys.create('globex')[1]}"},
                "settings": settings,
                "root": root,
            }
    finally:
        cluster.stop()
        server.stop()


def files_of(folder: Path) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (p.name, p.read_bytes())) for p in sorted(folder.iterdir())]


def wait_ingest(http: httpx.Client, ingest_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        record = http.get(f"/v1/ingests/{ingest_id}", headers=headers).json()
        if record.get("finished_at"):
            return record  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"ingest {ingest_id} not finished: {record}")


def ask(http: httpx.Client, question: str, headers: dict[str, str]) -> dict[str, Any]:
    job_id = http.post("/v1/jobs", json={"query": question}, headers=headers).json()["job_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = http.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if view.get("result"):
            return view["result"]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not finished")


@pytest.fixture(scope="module")
def uploaded(stack: dict[str, Any]) -> dict[str, Any]:
    """acme uploads a folder: 3 good files and 5 bad ones, watching the events stream."""
    folder = stack["root"] / "upload"
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
        folder / "travel.docx",
        title="Travel Policy",
        sections=[("Trains", "Employees travel first class on trains longer than four hours.")],
    )
    (folder / "falcon.html").write_text(HTML_PAGE)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "lies.pdf").write_bytes(b"plain text that claims to be a PDF")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    make_pdf(folder / "secret.pdf", ["classified"], password="hunter2")
    (folder / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    with httpx.Client(base_url=stack["url"], timeout=60) as http:
        accepted = http.post("/v1/documents", files=files_of(folder), headers=stack["acme"])
        assert accepted.status_code == 202, accepted.text
        body = accepted.json()
        with http.stream("GET", body["links"]["events"], headers=stack["acme"]) as events:
            frames = parse_sse("".join(events.iter_text()))
        record = http.get(body["links"]["self"], headers=stack["acme"]).json()
    return {"accepted": body, "frames": frames, "record": record, "folder": folder}


def test_upload_reports_each_file_and_streams_progress(uploaded: dict[str, Any]) -> None:
    record = uploaded["record"]
    outcomes = {f["name"]: (f["outcome"], f["reason"]) for f in record["files"]}
    assert {n for n, (o, _) in outcomes.items() if o == "indexed"} == {
        "pump.pdf",
        "travel.docx",
        "falcon.html",
    }
    assert outcomes["empty.txt"] == ("skipped", "empty file")
    assert "named .pdf but the bytes are text" in outcomes["lies.pdf"][1]
    assert "not UTF-8 text" in outcomes["latin1.txt"][1]
    assert "encrypted PDF" in outcomes["secret.pdf"][1]
    assert "no text layer (a scan or an image); enable OCR" in outcomes["scan.png"][1]
    assert record["status"] == "partial"
    kinds = [f["event"] for f in uploaded["frames"]]
    assert kinds[0] == "status" and kinds.count("file") == 8 and kinds[-1] == "done"


def test_answer_cites_the_pdf_page_and_section(
    stack: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    with httpx.Client(base_url=stack["url"], timeout=60) as http:
        result = ask(http, PUMP_Q, stack["acme"])
        doc = http.get("/v1/documents/pump.pdf", headers=stack["acme"]).json()
    cited = {(c["doc_id"], c["page"], c["section"]) for c in result["citations"]}
    assert ("pump.pdf", 2, "Maintenance") in cited, result
    assert doc["pages"] == 2 and doc["format"] == "pdf" and len(doc["content_hash"]) == 64
    assert doc["chunks"] == 2 and doc["title"] == "Quasar Pump Manual"


def test_same_bytes_are_a_no_op_and_new_bytes_replace_the_chunks(
    stack: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    folder = uploaded["folder"]
    with httpx.Client(base_url=stack["url"], timeout=60) as http:
        again = http.post(
            "/v1/documents",
            files=[("files", ("falcon.html", (folder / "falcon.html").read_bytes()))],
            headers=stack["acme"],
        ).json()
        assert wait_ingest(http, again["ingest_id"], stack["acme"])["files"][0]["outcome"] == (
            "unchanged"
        )
        changed = HTML_PAGE.replace("seventeen quail eggs", "nineteen duck eggs")
        new = http.post(
            "/v1/documents",
            files=[("files", ("falcon.html", changed.encode()))],
            headers=stack["acme"],
        ).json()
        outcome = wait_ingest(http, new["ingest_id"], stack["acme"])["files"][0]
        assert outcome["outcome"] == "replaced"
        result = ask(http, "How many duck eggs does Zorbath eat?", stack["acme"])
    assert "nineteen duck eggs" in result["answer"], result
    quotes = " ".join(c["quote"] for c in result["citations"])
    assert "seventeen" not in quotes


def test_a_text_document_goes_in_as_json(stack: dict[str, Any]) -> None:
    with httpx.Client(base_url=stack["url"], timeout=60) as http:
        accepted = http.post(
            "/v1/documents",
            json={"doc_id": "gate-code", "title": "Gate", "text": "The gate code is 4711."},
            headers=stack["acme"],
        )
        assert accepted.status_code == 202, accepted.text
        record = wait_ingest(http, accepted.json()["ingest_id"], stack["acme"])
        listing = http.get("/v1/documents", params={"limit": 500}, headers=stack["acme"]).json()
    assert record["files"][0]["outcome"] in ("indexed", "unchanged")
    assert "gate-code" in {d["doc_id"] for d in listing["documents"]}


def test_another_tenant_can_neither_see_nor_delete(
    stack: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    g = stack["globex"]
    with httpx.Client(base_url=stack["url"], timeout=60) as http:
        assert http.get("/v1/documents/pump.pdf", headers=g).status_code == 404
        assert http.delete("/v1/documents/pump.pdf", headers=g).status_code == 404
        assert http.get("/v1/documents", headers=g).json()["documents"] == []
        ingest = uploaded["accepted"]["ingest_id"]
        assert http.get(f"/v1/ingests/{ingest}", headers=g).status_code == 403
        assert http.get(f"/v1/ingests/{ingest}/events", headers=g).status_code == 403
        result = ask(http, PUMP_Q, g)
        assert http.get("/v1/documents/pump.pdf", headers=stack["acme"]).status_code == 200
    assert not result["citations"] or all(c["doc_id"] != "pump.pdf" for c in result["citations"])


def test_deleted_document_is_no_longer_cited(
    stack: dict[str, Any], uploaded: dict[str, Any]
) -> None:
    a = stack["acme"]
    with httpx.Client(base_url=stack["url"], timeout=60) as http:
        before = ask(http, "Which class do employees travel on long train trips?", a)
        assert any(c["doc_id"] == "travel.docx" for c in before["citations"]), before
        gone = http.delete("/v1/documents/travel.docx", headers=a)
        assert gone.status_code == 200, gone.text
        assert gone.json()["deleted"] is True and gone.json()["chunks"] >= 1
        assert http.get("/v1/documents/travel.docx", headers=a).status_code == 404
        assert http.delete("/v1/documents/travel.docx", headers=a).status_code == 404
        after = ask(http, "Which class do employees travel on long train trips?", a)
    assert all(c["doc_id"] != "travel.docx" for c in after["citations"]), after
    assert "first class" not in (after["answer"] or ""), after


def test_quotas_and_the_upload_cap_name_what_was_exceeded(stack: dict[str, Any]) -> None:
    settings = stack["settings"]
    docs = DocumentsConfig(tenant_max_documents=2, max_upload_bytes=4096, tenant_max_bytes=10**9)
    app = create_app(settings, GatewayConfig(rate_per_s=1000, burst=1000), documents=docs)
    files = [("files", (f"n{i}.txt", f"note {i}".encode())) for i in range(3)]
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        a = stack["acme"]  # acme already holds more than 2 documents
        over = http.post("/v1/documents", files=files, headers=a)
        assert over.status_code == 429 and "document quota" in over.json()["detail"]
        big = http.post("/v1/documents", files=[("files", ("big.txt", b"x" * 10_000))], headers=a)
        assert big.status_code == 413 and "4096 bytes" in big.json()["detail"]
        bad = http.post(
            "/v1/documents", content=b"hello", headers={**a, "content-type": "text/plain"}
        )
        assert bad.status_code == 415
        bad = http.post("/v1/documents", json={"text": ""}, headers=a)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.text"
    bytes_cap = DocumentsConfig(tenant_max_bytes=10)
    app = create_app(settings, GatewayConfig(rate_per_s=1000, burst=1000), documents=bytes_cap)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        over = http.post("/v1/documents", files=files, headers=stack["globex"])
        assert over.status_code == 413 and "storage quota" in over.json()["detail"], over.text
    json.dumps(over.json())


def test_listing_pages_and_filters_by_source_format_and_metadata(stack: dict[str, Any]) -> None:
    h = {"Authorization": stack["acme"]["Authorization"]}
    with httpx.Client(base_url=stack["url"], timeout=60) as http:
        for i in range(5):
            accepted = http.post(
                "/v1/documents",
                json={
                    "doc_id": f"memo-{i}",
                    "text": f"Memo number {i} about the quarterly review.",
                    "source": "memos",
                    "metadata": {"team": "ops" if i % 2 else "sales", "year": 2020 + i},
                },
                headers=h,
            )
            wait_ingest(http, accepted.json()["ingest_id"], h)
        seen, after = [], None
        while True:
            params: dict[str, Any] = {"limit": 2, "source": "memos"}
            if after:
                params["after"] = after
            page = http.get("/v1/documents", params=params, headers=h).json()
            seen += [d["doc_id"] for d in page["documents"]]
            after = page["next_after"]
            if after is None:
                break
        ops = http.get(
            "/v1/documents", params={"meta": ["team=ops", "year=2023"]}, headers=h
        ).json()
        bad = http.get("/v1/documents", params={"meta": "no-equals"}, headers=h)
    assert seen == [f"memo-{i}" for i in range(5)]
    assert [d["doc_id"] for d in ops["documents"]] == ["memo-3"] and ops["next_after"] is None
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.meta"


def test_a_file_over_the_per_file_limit_is_skipped_and_the_rest_proceed(
    stack: dict[str, Any],
) -> None:
    docs = DocumentsConfig(max_file_bytes=200)
    app = create_app(stack["settings"], GatewayConfig(rate_per_s=1000, burst=1000), documents=docs)
    files = [
        ("files", ("small.txt", b"The loading dock opens at six.")),
        ("files", ("large.txt", b"word " * 100)),
    ]
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        accepted = http.post("/v1/documents", files=files, headers=stack["globex"])
        assert accepted.status_code == 202, accepted.text
        record = wait_ingest(http, accepted.json()["ingest_id"], stack["globex"])
    outcomes = {f["name"]: (f["outcome"], f["reason"]) for f in record["files"]}
    assert outcomes["small.txt"] == ("indexed", "")
    assert outcomes["large.txt"] == ("skipped", "500 bytes; the limit is 200 bytes per file")

"""`ragrelay ingest` with Redis (issue 22, item 10): a resumed run reports only what it
ingested itself, and the timeout cuts a stalled run, never one that keeps progressing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ragrelay.client
from bus.errors import UsageError
from bus.keys import Keys
from bus.settings import Settings
from ragrelay.cli import ingest as ingest_cli
from schemas import Document, IngestResult


class FakeRedis:
    def __init__(self) -> None:
        self.hashes: dict[str, dict[bytes, bytes]] = {}

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return dict(self.hashes.get(key, {}))


class FakeClient:
    """The ingest queue without workers: ``finish_every`` polls, one queued batch is done."""

    def __init__(self, finish_every: float = 0.0, done: tuple[int, ...] = ()) -> None:
        self.keys = Keys("ragrelay")
        self.redis = FakeRedis()
        self.queued: list[dict[str, Any]] = []
        self.finish_every = finish_every
        self.last = time.monotonic()
        self.done = done

    def _mark(self, run_id: str, batch: int, n: int) -> None:
        result = IngestResult(run_id=run_id, batch=batch, documents=n, chunks=n)
        key = self.keys.ingest_done(run_id)
        self.redis.hashes.setdefault(key, {})[str(batch).encode()] = (
            result.model_dump_json().encode()
        )

    def run_task(self, name: str, payload: dict[str, Any], **options: Any) -> None:
        self.queued.append(payload)

    def tick(self) -> None:
        if self.queued and time.monotonic() - self.last >= self.finish_every:
            p = self.queued.pop(0)
            self._mark(p["run_id"], p["batch"], len(p["documents"]))
            self.last = time.monotonic()


class QuietWatch:
    """The no-worker warning (item 3, tested on its own) has nothing to say here."""

    def __init__(self, *args: Any) -> None:
        pass

    def poll(self, batches_done: int) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_cli, "IngestWatch", QuietWatch)


def _batches(n: int) -> list[list[Document]]:
    return [[Document(doc_id=f"d{i}", text="x")] for i in range(n)]


def _settings() -> Settings:
    return Settings(redis_url="redis://127.0.0.1:1/0")


def _run_polling(client: FakeClient, timeout_s: float, n: int) -> Any:
    real = client.redis.hgetall

    def hgetall(key: str) -> dict[bytes, bytes]:
        client.tick()
        return real(key)

    client.redis.hgetall = hgetall  # type: ignore[method-assign]
    return ingest_cli._run(client, _settings(), "r1", "t", _batches(n), timeout_s)


def test_a_run_that_keeps_progressing_is_not_cut_by_the_timeout() -> None:
    # 4 batches, one every 0.3 s: 1.2 s in all, longer than the 0.8 s timeout
    client = FakeClient(finish_every=0.3)
    started = time.monotonic()
    done, before = _run_polling(client, timeout_s=0.8, n=4)
    assert sorted(done) == [0, 1, 2, 3] and before == set()
    assert time.monotonic() - started > 0.8


def test_a_stalled_run_stops_with_what_to_do() -> None:
    client = FakeClient(finish_every=3600)
    client.last = 0.0  # the first batch finishes at once, then nothing
    with pytest.raises(UsageError, match=r"no batch finished in 0\.5 s.*resume"):
        _run_polling(client, timeout_s=0.5, n=3)


def test_a_resumed_run_reports_only_its_own_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(f'{{"_id": "d{i}", "text": "doc {i}"}}\n' for i in range(10)))
    client = FakeClient()
    run_id = ingest_cli.run_id_for([corpus], "default", 2)
    for batch in range(3):  # an earlier run finished 3 of the 5 batches
        client._mark(run_id, batch, 2)
    real = client.redis.hgetall

    def hgetall(key: str) -> dict[bytes, bytes]:
        while client.queued:
            time.sleep(0.1)  # an ingest worker at work
            client.tick()
        return real(key)

    client.redis.hgetall = hgetall  # type: ignore[method-assign]
    monkeypatch.setattr(
        ragrelay.client.RagrelayClient, "from_settings", classmethod(lambda *a, **k: client)
    )
    from ragrelay.cli.app import cli

    monkeypatch.setenv("RAGRELAY_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("RAGRELAY_DATA_DIR", str(tmp_path / "data"))
    out = CliRunner().invoke(cli, ["ingest", str(corpus), "--batch-size", "2", "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["documents"] == 10 and summary["resumed_documents"] == 6
    assert [p["batch"] for p in client.queued] == []  # the 2 left were sent and done
    # 4 documents in this run's time (not 10: a resumed run once reported 121805.7 docs/s)
    assert summary["seconds"] > 0.15
    assert summary["docs_per_s"] == pytest.approx(4 / summary["seconds"], rel=0.1)

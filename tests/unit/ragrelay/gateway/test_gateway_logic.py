"""Pure pieces of the gateway: SSE framing, readiness verdicts, Retry-After, eval cases, keys."""

from __future__ import annotations

from pathlib import Path

from ragrelay.gateway.authlimit import client_address
from ragrelay.gateway.config import GatewayConfig
from ragrelay.gateway.keys_store import hash_key, key_id_of, looks_like_key, new_key
from ragrelay.gateway.models import JobSubmission
from ragrelay.gateway.ratelimit import retry_after_seconds
from ragrelay.gateway.readiness import assess, heartbeat_files
from ragrelay.gateway.sse import comment, format_event, valid_entry_id


def test_sse_frames_carry_id_event_and_one_data_line_per_line() -> None:
    assert format_event('{"a": 1}', event="job.started", event_id="17-0") == (
        b'id: 17-0\nevent: job.started\ndata: {"a": 1}\n\n'
    )
    assert format_event("one\ntwo") == b"data: one\ndata: two\n\n"
    assert comment("keepalive") == b": keepalive\n\n"


def test_only_stream_entry_ids_are_valid_last_event_ids() -> None:
    assert valid_entry_id("1795865747738-0") and valid_entry_id("0-1")
    for bad in ("", "17", "17-", "-0", "17-0-1", "abc-0", "17-0\n", "1" * 21 + "-0"):
        assert not valid_entry_id(bad), bad


def test_readiness_needs_redis_then_an_orchestrator_then_fresh_heartbeats() -> None:
    ok = {"max_age_s": 30.0, "require_workers": True}
    assert assess(redis_ok=False, orchestrators=1, heartbeat_ages={}, **ok) == (
        False,
        ["redis unreachable"],
    )
    assert assess(redis_ok=True, orchestrators=1, heartbeat_ages={"analysis": 3.0}, **ok) == (
        True,
        [],
    )
    ready, problems = assess(redis_ok=True, orchestrators=0, heartbeat_ages={}, **ok)
    assert not ready and "no orchestrator" in problems[0]
    ready, problems = assess(
        redis_ok=True, orchestrators=2, heartbeat_ages={"generation": 95.0, "analysis": 1.0}, **ok
    )
    assert not ready and problems == ["generation: heartbeat 95 s old"]
    assert assess(
        redis_ok=True, orchestrators=0, heartbeat_ages={}, max_age_s=30.0, require_workers=False
    ) == (True, [])


def test_heartbeat_files_are_read_by_kind(tmp_path: Path) -> None:
    import os

    (tmp_path / "analysis.heartbeat").touch()
    os.utime(tmp_path / "analysis.heartbeat", (1000.0, 1000.0))
    (tmp_path / "notes.txt").touch()
    assert heartbeat_files(tmp_path, now=1012.5) == {"analysis": 12.5}
    assert heartbeat_files(None, now=0.0) == {}
    assert heartbeat_files(tmp_path / "missing", now=0.0) == {}


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert [retry_after_seconds(ms) for ms in (0, 1, 999, 1000, 1001, 2500)] == [1, 1, 1, 1, 2, 3]


def test_keys_have_a_public_id_and_a_secret_and_hash_deterministically() -> None:
    key_id, key = new_key()
    assert key.startswith(f"rr_{key_id}_") and looks_like_key(key)
    assert not looks_like_key(key + "x") and not looks_like_key("rr_short_secret")
    assert hash_key(key) == hash_key(key) and hash_key(key) != hash_key(new_key()[1])
    assert len(hash_key(key)) == 64


def test_a_well_formed_key_names_its_id() -> None:
    key_id, key = new_key()
    assert key_id_of(key) == key_id
    assert key_id_of("rr_short_secret") is None and key_id_of(key + "x") is None


def test_the_client_address_is_the_one_the_server_gives() -> None:
    assert client_address({"type": "http", "client": ("203.0.113.7", 5123)}) == "203.0.113.7"
    assert client_address({"type": "http", "client": ("::1", 5123, 0, 0)}) == "::1"
    assert client_address({"type": "http", "client": None}) == "unknown"
    assert client_address({"type": "http"}) == "unknown"


def test_the_async_redis_pool_holds_every_allowed_stream_and_some_headroom() -> None:
    assert GatewayConfig().redis_max_connections == 200 + 16
    assert GatewayConfig(sse_max_streams=5).redis_max_connections == 21


def test_submission_becomes_a_request_of_the_keys_tenant_with_the_header_key() -> None:
    body = JobSubmission(query="q", idempotency_key=None)
    request = body.to_request("acme", "k1")
    assert request.tenant == "acme" and request.idempotency_key == "k1"
    assert (
        JobSubmission(query="q", idempotency_key="b").to_request("t", None).idempotency_key == "b"
    )

"""bus/logging.py: every log line of a process goes through one redaction step — structlog
events, stdlib records rendered by the root handler, records sent to a library's own handler,
uncaught exceptions — and SDK loggers stay at INFO unless asked. No I/O beyond stderr."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import celery.app.log
import pytest
import structlog
from celery import Celery
from uvicorn.logging import AccessFormatter

from bus.logging import SDK_LOGGERS, configure_logging, get_logger, redact_record
from ragrelay.gateway.keys_store import new_key

_, API_KEY = new_key()
SECRET_PART = API_KEY[len("rr_") + 13 :]
REDIS_URL = "redis://:hunter2-pw@127.0.0.1:6379/0"


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """Global logging state as it was before the test, afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    streams = [(h, h.stream) for h in handlers if isinstance(h, logging.StreamHandler)]
    factory, hook, thread_hook = logging.getLogRecordFactory(), sys.excepthook, threading.excepthook
    levels = {name: logging.getLogger(name).level for name in (*SDK_LOGGERS, "celery.task")}
    config = structlog.get_config()
    try:
        yield capsys
    finally:
        root.handlers[:] = handlers
        for handler, stream in streams:
            handler.stream = stream
        root.setLevel(level)
        logging.setLogRecordFactory(factory)
        sys.excepthook, threading.excepthook = hook, thread_hook
        for name, lvl in levels.items():
            logging.getLogger(name).setLevel(lvl)
        logging.captureWarnings(False)
        structlog.configure(**config)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]


def access_record(logger: logging.Logger) -> None:
    """What uvicorn's access logger sends (uvicorn/protocols/http/h11_impl.py)."""
    logger.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:50000",
        "GET",
        f"/ui/jobs/j1?key={API_KEY}&tab=trace",
        "1.1",
        200,
    )


def test_an_access_log_record_goes_through_the_chain_as_json_without_the_key(
    logs: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    access_record(logging.getLogger("uvicorn.access"))
    [line] = lines(logs)
    assert line["logger"] == "uvicorn.access" and line["level"] == "info"
    assert line["event"] == '127.0.0.1:50000 - "GET /ui/jobs/j1?key=***&tab=trace HTTP/1.1" 200'
    assert SECRET_PART not in json.dumps(line)


def test_a_library_handler_of_its_own_gets_redacted_records_with_their_args_intact(
    logs: pytest.CaptureFixture[str],
) -> None:
    """uvicorn's own log config: a handler on uvicorn.access, propagate off, a formatter
    that unpacks ``record.args`` — the record factory's redaction keeps that working."""
    configure_logging("INFO")
    logger = logging.getLogger("test.own-handler.access")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    )
    logger.addHandler(handler)
    logger.propagate = False
    try:
        access_record(logger)
    finally:
        logger.removeHandler(handler)
    assert out.getvalue() == (
        '127.0.0.1:50000 - "GET /ui/jobs/j1?key=***&tab=trace HTTP/1.1" 200 OK\n'
    )


def test_redact_record_merges_the_message_when_the_secret_spans_the_template() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "password=%s", ("hunter2",), None)
    redact_record(record)
    assert record.getMessage() == "password=***" and record.args == ()
    kept = logging.LogRecord("x", logging.INFO, __file__, 1, "%s: %d", (REDIS_URL, 3), None)
    redact_record(kept)
    assert kept.msg == "%s: %d" and kept.args == ("redis://:***@127.0.0.1:6379/0", 3)


def test_tracebacks_are_redacted_in_json_and_in_plain_handlers(
    logs: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    plain = io.StringIO()
    handler = logging.StreamHandler(plain)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("test.traceback")
    logger.addHandler(handler)
    try:
        raise ConnectionError(f"cannot reach {REDIS_URL}")
    except ConnectionError:
        logger.exception("lost Redis")
    finally:
        logger.removeHandler(handler)
    [line] = lines(logs)
    assert "cannot reach redis://:***@127.0.0.1:6379/0" in line["exception"]
    assert "hunter2-pw" not in json.dumps(line) and "hunter2-pw" not in plain.getvalue()
    assert "redis://:***@" in plain.getvalue()


def test_structlog_events_are_redacted(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", redact=False)
    get_logger("t").info(
        "submitted",
        url=REDIS_URL,
        headers={"Authorization": f"Bearer {API_KEY}"},
        who="ann@example.org",
    )
    [line] = lines(logs)
    assert line["url"] == "redis://:***@127.0.0.1:6379/0"
    assert line["headers"] == {"Authorization": "***"}
    assert line["who"] == "ann@example.org"  # PII off: secrets are redacted all the same


def test_sdk_loggers_stay_at_info_at_debug_unless_asked(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG")
    sdk = logging.getLogger("anthropic._base_client")
    assert not sdk.isEnabledFor(logging.DEBUG) and sdk.isEnabledFor(logging.INFO)
    assert logging.getLogger("kombu").isEnabledFor(logging.DEBUG)
    sdk.debug("Request options: %s", {"json_data": {"messages": "the whole prompt"}})
    assert lines(logs) == []

    configure_logging("WARNING")
    assert not logging.getLogger("httpx2").isEnabledFor(logging.INFO)

    configure_logging("DEBUG", sdk_debug=True)
    sdk.debug(
        "Request options: %s",
        {
            "headers": {"x-api-key": "sk-ant-api03-abcdefghijklmn"},
            "json_data": {"messages": "the whole prompt"},
        },
    )
    [line] = lines(logs)
    assert "the whole prompt" in line["event"] and "abcdefghijklmn" not in line["event"]


def test_uncaught_exceptions_are_printed_redacted(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO")
    try:
        raise RuntimeError(f"bad URL {REDIS_URL}")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    err = logs.readouterr().err
    assert "RuntimeError: bad URL redis://:***@127.0.0.1:6379/0" in err
    assert "hunter2-pw" not in err


def test_celery_leaves_logging_to_us(
    logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Celery's own set-up would give celery.task a handler of its own (propagate off)."""
    configure_logging("INFO")
    monkeypatch.setattr(celery.app.log.Logging, "_setup", False)
    root_handlers = list(logging.getLogger().handlers)
    Celery("t", set_as_current=False).log.setup(loglevel="INFO")
    assert logging.getLogger().handlers == root_handlers
    task_logger = logging.getLogger("celery.task")
    assert task_logger.propagate
    assert not [h for h in task_logger.handlers if not isinstance(h, logging.NullHandler)]


def test_server_loggers_set_up_by_uvicorn_are_brought_back_to_the_chain(
    logs: pytest.CaptureFixture[str],
) -> None:
    """What a uvicorn.Config(access_log=False, log_level="warning") or a dictConfig left
    behind in this process."""
    access = logging.getLogger("uvicorn.access")
    access.handlers = [logging.NullHandler()]
    access.propagate = False
    access.disabled = True
    access.setLevel(logging.WARNING)
    try:
        configure_logging("INFO")
        access_record(access)
        [line] = lines(logs)
        assert line["logger"] == "uvicorn.access" and API_KEY not in json.dumps(line)
    finally:
        access.handlers, access.propagate, access.disabled = [], True, False
        access.setLevel(logging.NOTSET)

"""Logging set-up: one chain for every log line of a process, and no secret in any of them.

- structlog events: context ids, level, timestamp, exception, then :class:`Redactor`
  (secrets always, PII unless ``redact_pii`` is off), then JSON (or console) on stderr.
- stdlib records (Celery, kombu, uvicorn, the Anthropic SDK, httpx, urllib3, weaviate, ...)
  go through the root handler, whose ``ProcessorFormatter`` runs the same processors: the
  same JSON lines, redacted the same way. Celery is told not to set up logging (its
  ``setup_logging`` signal has a receiver) and ``ragrelay serve`` runs uvicorn without a log
  config of its own, so their records reach that handler.
- A record that some library sends to a handler of its own is redacted all the same: the
  log-record factory redacts each record's message and traceback when the record is made,
  before any handler sees it.
- Uncaught exceptions (``sys.excepthook``, ``threading.excepthook``) and warnings are
  printed through the same redaction.
- SDK and HTTP-client loggers (:data:`SDK_LOGGERS`) stay at INFO or above even at
  ``LOG_LEVEL=DEBUG``: at DEBUG the Anthropic SDK logs each request's options, i.e. whole
  prompts. ``RAGRELAY_LOG_SDK_DEBUG=true`` lets their DEBUG through (still redacted).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

import structlog

from bus.redaction import Redactor, redact_text

CONTEXT_KEYS = ("job_id", "step", "tenant", "task_id", "trace_id", "traceparent")
# Third-party loggers that log request bodies, headers or prompts at DEBUG.
SDK_LOGGERS = (
    "anthropic",
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "h11",
    "h2",
    "hpack",
    "urllib3",
    "weaviate",
    "grpc",
)

# servers that configure their own loggers when they start
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class _State:
    pii = True


_STATE = _State()


def configure_logging(
    level: str = "INFO", *, json: bool = True, redact: bool = True, sdk_debug: bool = False
) -> None:
    """Configure structlog and the stdlib root logger (idempotent: later calls re-apply).

    ``redact`` turns PII redaction on; secrets are redacted whatever it says.
    """
    _STATE.pii = redact
    redactor = Redactor(pii=redact)
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redactor, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_ragrelay", False)), None)
    if not isinstance(handler, logging.StreamHandler):
        handler = logging.StreamHandler(sys.stderr)
        handler._ragrelay = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    # structlog's lines go to the current stderr: so do these. (Not setStream: it flushes the
    # old stream, which a test runner's redirection may have closed.)
    handler.stream = sys.stderr
    handler.setFormatter(formatter)
    root.setLevel(level)
    levelno = logging.getLevelName(level)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(levelno if sdk_debug else max(levelno, logging.INFO))
    for name in SERVER_LOGGERS:
        # uvicorn (or a dictConfig run before us) may have given these handlers of their own
        # or stopped them propagating, or a level of their own (uvicorn's log_level): every
        # line goes through the root handler's chain, at the level given here
        server = logging.getLogger(name)
        server.handlers.clear()
        server.setLevel(logging.NOTSET)
        server.propagate = True
        server.disabled = False
    _install_record_factory()
    _install_excepthooks()
    logging.captureWarnings(True)
    _keep_celery_off_logging()


# --- stdlib records --------------------------------------------------------------------------


def redact_record(record: logging.LogRecord, *, pii: bool = True) -> None:
    """Redact ``record`` in place: its message, traceback and stack text.

    When only the arguments hold a secret, the redacted arguments replace them and the
    format string is kept (formatters such as uvicorn's access formatter read ``args``);
    otherwise the record's message becomes the redacted text, without arguments.
    """
    try:
        message = record.getMessage()
    except Exception:  # a malformed call; logging reports it when emitting: keep it readable
        record.msg, record.args = redact_text(f"{record.msg} {record.args!r}", pii=pii), ()
    else:
        clean = redact_text(message, pii=pii)
        if clean != message:
            _replace_message(record, clean, pii=pii)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = redact_text(text, pii=pii)
        if clean != text:
            record.exc_text = clean
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info, pii=pii)


def _replace_message(record: logging.LogRecord, clean: str, *, pii: bool) -> None:
    if isinstance(record.msg, str) and isinstance(record.args, tuple) and record.args:
        args = tuple(_redact_arg(a, pii) for a in record.args)
        try:
            candidate = record.msg % args
        except (TypeError, ValueError):
            candidate = None
        if candidate is not None and redact_text(candidate, pii=pii) == candidate:
            record.args = args
            return
    record.msg, record.args = clean, ()


def _redact_arg(value: Any, pii: bool) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else str(value)
    clean = redact_text(text, pii=pii)
    return clean if clean != text else value


def _install_record_factory() -> None:
    current = logging.getLogRecordFactory()
    if getattr(current, "_ragrelay", False):
        return
    base: Callable[..., logging.LogRecord] = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        redact_record(record, pii=_STATE.pii)
        return record

    factory._ragrelay = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# --- uncaught exceptions, Celery -------------------------------------------------------------


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(redact_text(text, pii=_STATE.pii))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else threading.get_ident()
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(redact_text(f"Exception in thread {name}:\n{text}", pii=_STATE.pii))


def _install_excepthooks() -> None:
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def _celery_keeps_our_logging(**kwargs: Any) -> None:
    """A ``setup_logging`` receiver: its presence stops Celery configuring logging (it would
    give ``celery.task`` a handler of its own, bypassing the root handler's chain)."""


def _keep_celery_off_logging() -> None:
    from celery.signals import setup_logging

    setup_logging.connect(_celery_keeps_our_logging, weak=False, dispatch_uid="ragrelay.logging")


# --- context ---------------------------------------------------------------------------------


def bind(**values: Any) -> None:
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})


def clear() -> None:
    structlog.contextvars.clear_contextvars()


def current() -> dict[str, Any]:
    return {k: v for k, v in structlog.contextvars.get_contextvars().items() if k in CONTEXT_KEYS}


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)

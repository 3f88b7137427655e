"""Dead-lettering what Celery's consumer would otherwise drop with only a log line.

Celery acknowledges a message whose body cannot be decoded (``on_decode_error``) and
rejects one naming a task this worker does not know (``on_unknown_task``): either way the
message is gone. This consumer keeps both in the dead-letter store with the reason first,
so ``ragrelay dlq`` can show and replay them. Set as ``worker_consumer`` by ``create_app``.
"""

from __future__ import annotations

import json
from typing import Any

from celery.worker.consumer import Consumer

from bus import logging as blog

log = blog.get_logger("ragrelay.consumer")


class DeadLetteringConsumer(Consumer):  # type: ignore[misc]
    def on_decode_error(self, message: Any, exc: Exception) -> None:
        body = message.body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        _dead_letter(
            self.app,
            message,
            payload=text,
            kind="undecodable",
            reason=f"undecodable message ({message.content_type}): {exc}",
        )
        super().on_decode_error(message, exc)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        name = (message.headers or {}).get("task", "?")
        args = body[0] if isinstance(body, list | tuple) and body else body
        payload = args[0] if isinstance(args, list | tuple) and len(args) == 1 else args
        _dead_letter(
            self.app,
            message,
            payload=payload,
            kind="unknown_task",
            reason=f"unknown task {name!r}: no worker on this queue registers it",
        )
        super().on_unknown_task(body, message, exc)

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        """Close the task channel first, while its transport is still attached.

        Celery (5.7) collects the broken connection, which detaches its transport, and then
        closes it; closing the channel tries to put its unacknowledged messages back through
        the detached transport, and the AttributeError that raises stops the worker (seen in
        ``make chaos`` after a Redis restart, about one run in four). Closed here, kombu
        tries the restore once: it succeeds if Redis is back, and otherwise the messages
        stay in Redis's unacked index and return after the visibility timeout, as for a
        worker that died.
        """
        _close_default_channel(self.connection)
        super().on_connection_error_after_connected(exc)


def _close_default_channel(connection: Any) -> None:
    channel = getattr(connection, "_default_channel", None) if connection is not None else None
    if channel is None:
        return
    try:
        channel.close()
    except Exception as err:  # recovering from a lost broker: whatever the close raises
        log.warning("broker.channel_close_failed", error=repr(err))


def _dead_letter(app: Any, message: Any, *, payload: Any, kind: str, reason: str) -> None:
    runtime = getattr(app, "ragrelay_runtime", None)
    headers = message.headers or {}
    info = message.delivery_info or {}
    job_id = payload.get("job_id") if isinstance(payload, dict) else None
    if runtime is None:  # a bare app (no ragrelay runtime attached): the log is all we have
        log.error("message.dropped", reason=reason, kind=kind)
        return
    try:
        runtime.dead_letters.put(
            task=str(headers.get("task") or ""),
            queue=str(info.get("routing_key") or ""),
            payload=payload,
            reason=reason,
            kind=kind,
            job_id=job_id if isinstance(job_id, str) else None,
            task_id=str(headers.get("id") or "") or None,
        )
    except Exception as err:  # never let the store's failure crash the consumer loop
        log.error(
            "dead_letter.failed",
            reason=reason,
            error=str(err),
            payload=json.dumps(payload, default=str)[:500],
        )

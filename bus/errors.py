"""The one exception hierarchy of ragrelay.

    RagrelayError
    ├── UsageError              the caller's mistake: never retried
    │   ├── ConfigError         bad or missing settings (fail at start-up)
    │   ├── InvalidMessage      a message that does not validate (dead-lettered, job failed)
    │   ├── IdempotencyConflict an idempotency key reused with a different request
    │   └── AdmissionRejected   a new job refused at the door: a queue or the tenant is full
    ├── CorruptRecord           stored state that cannot be read back: quarantined, never
    │                           retried, and never allowed to hold up other records
    └── StepError               a runtime failure inside a step
        ├── TransientError      retried with backoff (rate limit, timeout, connection reset)
        └── PermanentError      not retried: dead-lettered, job failed (or degraded)

Third-party exceptions are translated once, at the adapter boundary (``raise X from exc``).
Exceptions are data: constructors neither log nor do I/O.
"""

from __future__ import annotations


class RagrelayError(Exception):
    """Root of every error ragrelay raises on purpose."""


class UsageError(RagrelayError):
    """The caller did something wrong; retrying cannot help."""


class ConfigError(UsageError):
    """Settings are missing or invalid; the message says what to set."""


class InvalidMessage(UsageError):
    """A message failed validation at a boundary."""

    def __init__(self, reason: str, *, job_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.job_id = job_id


class IdempotencyConflict(UsageError):
    """The idempotency key already names a job that was submitted with a different request."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            f"idempotency key {key!r} already names job {job_id}, submitted with a different "
            "request; use a new key for a new request"
        )
        self.key = key
        self.job_id = job_id


class AdmissionRejected(UsageError):
    """A new job refused at the door (docs/deployment.md, "Admission control").

    ``limit`` is ``queue_depth`` or ``tenant_in_flight``; ``subject`` the queue or tenant;
    ``current`` what was counted, ``maximum`` the limit; retry after ``retry_after_s``.
    """

    def __init__(
        self, limit: str, subject: str, current: int, maximum: int, *, retry_after_s: int
    ) -> None:
        what = (
            f"queue {subject!r} holds {current} tasks (limit {maximum})"
            if limit == "queue_depth"
            else f"tenant {subject!r} has {current} jobs in flight (limit {maximum})"
        )
        super().__init__(f"rejected by admission control: {limit}: {what}; retry later")
        self.limit = limit
        self.subject = subject
        self.current = current
        self.maximum = maximum
        self.retry_after_s = retry_after_s


class CorruptRecord(RagrelayError):
    """A stored record (job state, event, result) that cannot be loaded or applied."""

    def __init__(self, job_id: str, reason: str, *, raw: bytes | None = None) -> None:
        super().__init__(f"job {job_id}: {reason}")
        self.job_id = job_id
        self.reason = reason
        self.raw = raw


class StepError(RagrelayError):
    """A step failed at run time."""


class TransientError(StepError):
    """Worth retrying later. ``retry_after`` (seconds) is honoured when the server sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(StepError):
    """Retrying will not help (bad request, auth, not found)."""


__all__ = [
    "AdmissionRejected",
    "ConfigError",
    "CorruptRecord",
    "IdempotencyConflict",
    "InvalidMessage",
    "PermanentError",
    "RagrelayError",
    "StepError",
    "TransientError",
    "UsageError",
]

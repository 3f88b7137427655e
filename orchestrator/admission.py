"""Admission control: which limits a new job is checked against, in the submit script.

The check and the creation are one Lua script (``lua/submit.lua``), so two submissions
racing for the last slot cannot both get it. Limits (docs/deployment.md, "Admission
control"):

- per queue: the length of a stage's Celery queue (its Redis list), counted before the job
  is created; tasks a worker holds unacked are not counted (they are being worked on);
- per tenant: the tenant's running jobs, a zset (job id -> deadline) the submit script adds
  to and the commit/quarantine scripts remove from when the job ends.

Every limit is off unless set; the per-tenant zset is kept either way, so turning the limit
on later counts jobs already running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bus.keys import STAGE_QUEUES
from bus.settings import Settings

#: A running-set entry whose deadline passed this long ago is a leak (its job was lost
#: before the sweeper ended it): the submit script drops it instead of counting it.
STALE_GRACE_S = 300.0


@dataclass(frozen=True)
class AdmissionLimits:
    """The limits a submission is checked against; ``None``/absent means no limit."""

    queue_depth: Mapping[str, int] = field(default_factory=dict)
    tenant_in_flight: int | None = None
    retry_after_s: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> AdmissionLimits:
        depth: dict[str, int] = {}
        if settings.admission_queue_max is not None:
            depth = dict.fromkeys(STAGE_QUEUES, settings.admission_queue_max)
        depth.update(settings.admission_queue_limits)
        return cls(
            queue_depth=depth,
            tenant_in_flight=settings.admission_tenant_in_flight,
            retry_after_s=settings.admission_retry_after_s,
        )

    @property
    def active(self) -> bool:
        return bool(self.queue_depth) or self.tenant_in_flight is not None

    def script_args(self) -> tuple[list[str], list[str]]:
        """The submit script's queue keys and its trailing ARGV (tenant limit, grace, queue
        limits in the order of the keys)."""
        queues = sorted(self.queue_depth)
        argv = [
            str(self.tenant_in_flight if self.tenant_in_flight is not None else -1),
            repr(STALE_GRACE_S),
            *(str(self.queue_depth[q]) for q in queues),
        ]
        return queues, argv


NO_LIMITS = AdmissionLimits()

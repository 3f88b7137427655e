"""Feedback on a job (rating, comment, corrected answer), kept for the eval flywheel.

Each record carries a snapshot of the job's query and answer taken when the feedback
arrives, so it stays exportable as an eval case after the job itself has expired.

    <prefix>:feedback:job:<job id>       list of FeedbackRecord JSON (per job)
    <prefix>:feedback:tenant:<tenant>    list of FeedbackRecord JSON (per tenant, for export)

Feedback is kept without a TTL: it is the eval set's raw material.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field

from schemas import JobResult


class FeedbackIn(BaseModel):
    """What a caller sends about a job's answer."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # strict: "5", 4.0 or true is a client bug to report, not a rating to guess at
    rating: int = Field(ge=1, le=5, strict=True, description="1 (useless) to 5 (perfect)")
    comment: str | None = Field(None, max_length=4000)
    corrected_answer: str | None = Field(
        None,
        min_length=1,
        max_length=20_000,
        description="What the answer should have been; becomes the eval case's reference",
    )


class FeedbackRecord(FeedbackIn):
    feedback_id: str
    job_id: str
    tenant: str
    at: float
    query: str | None = None
    answer: str | None = None
    status: str | None = None
    cited_doc_ids: list[str] = Field(default_factory=list)


class FeedbackStore:
    def __init__(self, client: redis.Redis, *, prefix: str = "ragrelay") -> None:
        self.client = client
        self.prefix = prefix

    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}:feedback:job:{job_id}"

    def _tenant_key(self, tenant: str) -> str:
        return f"{self.prefix}:feedback:tenant:{tenant}"

    def add(
        self,
        job_id: str,
        tenant: str,
        feedback: FeedbackIn,
        *,
        query: str | None,
        result: JobResult | None,
        now: float | None = None,
    ) -> FeedbackRecord:
        record = FeedbackRecord(
            **feedback.model_dump(),
            feedback_id=uuid.uuid4().hex,
            job_id=job_id,
            tenant=tenant,
            at=time.time() if now is None else now,
            query=query,
            answer=result.answer if result is not None else None,
            status=result.status if result is not None else None,
            cited_doc_ids=sorted({c.doc_id for c in result.citations}) if result else [],
        )
        return self.store(record)

    def store(self, record: FeedbackRecord) -> FeedbackRecord:
        """Keep a record built elsewhere (e.g. the inbox, from a draft a person edited)."""
        raw = record.model_dump_json()
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(self._job_key(record.job_id), raw)
        pipe.rpush(self._tenant_key(record.tenant), raw)
        pipe.execute()
        return record

    def for_tenant(self, tenant: str) -> list[FeedbackRecord]:
        rows: list[bytes] = self.client.lrange(self._tenant_key(tenant), 0, -1)  # type: ignore[assignment]
        return [FeedbackRecord.model_validate_json(r) for r in rows]

    def tenants(self) -> list[str]:
        pattern = self._tenant_key("*")
        return sorted(_s(k).rsplit(":", 1)[1] for k in self.client.scan_iter(match=pattern))

    def all(self, tenant: str | None = None) -> Iterator[FeedbackRecord]:
        for t in [tenant] if tenant else self.tenants():
            yield from self.for_tenant(t)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

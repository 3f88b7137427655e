"""What a store does with chunks that cannot be written: list them, never drop them silently.

Every :class:`workers.ports.DocumentStore` writes the good chunks of a batch and raises
:class:`PartialBatchError` naming each chunk it could not write (its index in the batch,
its ``chunk_id`` and why). ``written`` says how many were stored, so an ingest command can
report progress and re-send only the failures.

"Bad" is defined once, here, for every store (:func:`chunk_problem`): a blank ``chunk_id``,
``doc_id`` or ``text``, or metadata that is not plain JSON (a set, an object, NaN, ±inf).
A server may reject more (Weaviate reports per-object errors); those are listed the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bus.errors import PermanentError
from schemas import Chunk


@dataclass(frozen=True)
class ChunkFailure:
    """One chunk a store did not write."""

    index: int  # position in the batch passed to ``upsert``
    chunk_id: str
    reason: str


class PartialBatchError(PermanentError):
    """Some chunks of a batch were not written; the others were (``written`` of them).

    Permanent: re-sending the same bad chunks cannot succeed. The good ones are stored, so
    re-sending the whole batch after fixing the bad ones is safe (upserts are idempotent).
    """

    def __init__(self, written: int, failures: Sequence[ChunkFailure]) -> None:
        self.written = written
        self.failures = tuple(failures)
        shown = "; ".join(
            f"{f.chunk_id or '#' + str(f.index)}: {f.reason}" for f in self.failures[:5]
        )
        more = f" (+{len(self.failures) - 5} more)" if len(self.failures) > 5 else ""
        super().__init__(
            f"{len(self.failures)} chunk(s) not written, {written} written: {shown}{more}"
        )

    @property
    def failed_chunk_ids(self) -> list[str]:
        return [f.chunk_id for f in self.failures]


def _plain_json(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_plain_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    return False


def chunk_problem(chunk: Chunk) -> str | None:
    """Why ``chunk`` cannot be stored, or ``None`` when it can."""
    if not chunk.chunk_id.strip():
        return "chunk_id is blank"
    if not chunk.doc_id.strip():
        return "doc_id is blank"
    if not chunk.text.strip():
        return "text is blank"
    if not _plain_json(chunk.metadata):
        return (
            "metadata is not plain JSON (only str, int, finite float, bool, null, lists, objects)"
        )
    return None


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


__all__ = ["ChunkFailure", "PartialBatchError", "canonical_json", "chunk_problem"]

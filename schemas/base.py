"""The base of every message: versioned, strict about unknown fields, JSON only."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, field_validator

SCHEMA_VERSION = 1


class Message(BaseModel):
    """A typed message. ``schema_version`` travels with it; a newer major is rejected."""

    # allow_inf_nan=False: JSON has no NaN or Infinity, and pydantic would write them as
    # null, which no reader accepts back (docs/reliability.md, "Validate before you write")
    model_config = ConfigDict(
        extra="forbid", frozen=False, populate_by_name=True, allow_inf_nan=False
    )

    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {value} is newer than this server understands ({SCHEMA_VERSION})"
            )
        return value

    def to_json(self) -> str:
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, raw: str | bytes) -> Self:
        return cls.model_validate_json(raw)

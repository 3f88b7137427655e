"""Command-line values shared by replay and the eval harness."""

from __future__ import annotations

from collections.abc import Iterable

from bus.errors import UsageError
from workers.settings import parse_version_pins


def parse_prompt_versions(values: Iterable[str]) -> dict[str, int]:
    """``["generation=2", "evaluation=v1"]`` -> ``{"generation": 2, "evaluation": 1}``."""
    try:
        return parse_version_pins(values, what="--prompt-version")
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


__all__ = ["parse_prompt_versions"]

"""Command-line values shared by replay and the eval harness."""

from __future__ import annotations

from collections.abc import Iterable

from bus.errors import UsageError


def parse_prompt_versions(values: Iterable[str]) -> dict[str, int]:
    """``["generation=2", "evaluation=v1"]`` -> ``{"generation": 2, "evaluation": 1}``."""
    out: dict[str, int] = {}
    for raw in values:
        name, sep, version = raw.partition("=")
        name, version = name.strip(), version.strip().lower().removeprefix("v")
        if not sep or not name or not version.isdigit():
            raise UsageError(f"--prompt-version {raw!r}: expected NAME=VERSION, e.g. generation=2")
        if name in out:
            raise UsageError(f"--prompt-version: {name} given twice")
        out[name] = int(version)
    return out


__all__ = ["parse_prompt_versions"]

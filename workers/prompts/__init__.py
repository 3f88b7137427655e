"""Prompts as versioned files: ``<name>.v<N>.md`` beside this module.

Each prompt is identified by name, version and the first 12 hex digits of its content's
SHA-256, written ``name@vN:hash`` (e.g. ``generation@v1:3f1c2a9b0d7e``). That string travels
on every stage result (``prompt_version``) and so into the job's trace. Editing a prompt
means adding ``<name>.v<N+1>.md``; the loader picks the highest version unless asked.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from bus.errors import ConfigError

_FILE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>\d+)\.md$")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    sha256: str  # first 12 hex digits of the SHA-256 of the file's bytes
    text: str

    @property
    def ref(self) -> str:
        """What results and traces record: ``name@vN:hash``."""
        return f"{self.name}@v{self.version}:{self.sha256}"

    @property
    def filename(self) -> str:
        return f"{self.name}.v{self.version}.md"


def _read(filename: str) -> Prompt:
    match = _FILE.match(filename)
    if match is None:  # pragma: no cover - callers pass only matching names
        raise ConfigError(f"not a prompt file name: {filename}")
    data = resources.files(__package__).joinpath(filename).read_bytes()
    return Prompt(
        name=match["name"],
        version=int(match["version"]),
        sha256=hashlib.sha256(data).hexdigest()[:12],
        text=data.decode("utf-8").strip(),
    )


@cache
def _all() -> tuple[Prompt, ...]:
    names = sorted(
        entry.name for entry in resources.files(__package__).iterdir() if _FILE.match(entry.name)
    )
    return tuple(sorted((_read(n) for n in names), key=lambda p: (p.name, p.version)))


def list_prompts(*, latest_only: bool = False) -> list[Prompt]:
    """Every prompt file, by name then version (or only each name's highest version)."""
    prompts = list(_all())
    if latest_only:
        latest: dict[str, Prompt] = {}
        for p in prompts:
            latest[p.name] = p
        prompts = list(latest.values())
    return prompts


def load_prompt(name: str, version: int | None = None) -> Prompt:
    """The prompt ``name`` at ``version`` (default: its highest version)."""
    candidates = [p for p in _all() if p.name == name]
    if not candidates:
        known = sorted({p.name for p in _all()})
        raise ConfigError(f"no prompt named {name!r} (known: {', '.join(known)})")
    if version is None:
        return candidates[-1]
    for p in candidates:
        if p.version == version:
            return p
    have = ", ".join(f"v{p.version}" for p in candidates)
    raise ConfigError(f"prompt {name!r} has no version v{version} (have: {have})")


__all__ = ["Prompt", "list_prompts", "load_prompt"]

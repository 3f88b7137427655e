"""What a sync source last delivered: doc id -> content hash (and the source's ``updated``
value), one JSON file per (tenant, source) under the data dir. Written only after the
ingest confirmed each document, so a run that dies part-way is simply resumed by the next
one (documents not confirmed are still "changed" then)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    hash: str
    updated: str | None = None


@dataclass
class Manifest:
    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def load(cls, data_dir: Path, tenant: str, source_key: str) -> Manifest:
        digest = hashlib.sha256(source_key.encode()).hexdigest()[:16]
        path = data_dir / "sync" / tenant / f"{digest}.json"
        if not path.exists():
            return cls(path)
        raw = json.loads(path.read_text())
        return cls(path, {k: Entry(**v) for k, v in raw["entries"].items()})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        entries = {k: {"hash": e.hash, "updated": e.updated} for k, e in self.entries.items()}
        tmp.write_text(json.dumps({"entries": entries}, sort_keys=True))
        os.replace(tmp, self.path)  # atomic: a crash leaves the old manifest whole

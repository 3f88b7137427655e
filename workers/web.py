"""Web search connectors. The default is disabled: no web unless configured."""

from __future__ import annotations

from schemas import ScoredChunk


class DisabledWeb:
    enabled = False

    def search(self, query: str, k: int = 5) -> list[ScoredChunk]:
        return []

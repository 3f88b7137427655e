"""A tiny deterministic embedder for tests: hashed word and character-trigram features.

This is a FAKE, honest about it: it knows no meaning, only shared words and spellings.
It needs nothing installed, is fast and gives the same vector for the same text in every
process, which is what unit tests of stores and fusion need. Never the default for users
when a real model is installed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from workers.ports import Vector
from workers.text.tokenize import stems


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % dim, 1.0 if (value >> 63) & 1 else -1.0


class HashingEmbedder:
    """A :class:`workers.ports.Embedder` fake: signed feature hashing, L2-normalised."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def embed(self, texts: Sequence[str]) -> Vector:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for term in stems(text):
                for feature in (
                    f"w:{term}",
                    *(f"c:{term[i : i + 3]}" for i in range(len(term) - 2)),
                ):
                    col, sign = _bucket(feature, self.dim)
                    out[row, col] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
        return out

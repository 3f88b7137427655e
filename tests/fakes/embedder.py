"""A deterministic hashing embedder for tests: a fake, not a model.

Each lower-cased alphanumeric token is hashed (blake2b) to one of ``dim`` buckets with a
sign; the vector is L2-normalised. Texts that share words get a positive cosine, texts
that share none get ~0. Same text, same vector, on every machine. Use it where a test
needs vectors that behave sensibly, never to judge retrieval quality.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_TOKEN = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    """Implements :class:`workers.ports.Embedder` by feature hashing."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.name = f"test-hashing-{dim}"

    def _vector(self, text: str) -> npt.NDArray[np.float32]:
        vec = np.zeros(self.dim, dtype=np.float32)
        for token in _TOKEN.findall(text.lower()):
            digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vec[value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        if norm == 0.0:
            vec[0] = 1.0  # no tokens: a fixed unit vector, so the output is always unit-length
            return vec
        return vec / norm

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

"""Static word vectors: the word-piece input embeddings of the packaged all-MiniLM-L6-v2.

No encoder is run: a word's vector is the mean of its word pieces' rows of the model's
input embedding table, so similar words ("tv"/"television", "eat"/"eating",
"contend"/"argued") get a cosine well above unrelated ones. Cheap (a table lookup, cached
per word) and available wherever the MiniLM package is installed; ``None`` elsewhere, and
the extractive answerer then matches words exactly.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

#: Words whose vectors are kept (≈ 1.6 KB each): bounded, so a long-running worker that sees
#: an open vocabulary stays at a few tens of MB; when full, the cache starts over.
MAX_CACHED_WORDS = 20_000


class WordVectors:
    """Unit vectors of words from a word-piece tokenizer and its embedding table."""

    def __init__(self, table: npt.NDArray[Any], tokenizer_json: Path) -> None:
        from tokenizers import Tokenizer

        self._table = np.asarray(table, dtype=np.float32)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._lock = threading.Lock()
        self._cache: dict[str, Vector] = {}

    @property
    def dim(self) -> int:
        return int(self._table.shape[1])

    def vector(self, word: str) -> Vector:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        with self._lock:
            ids = self._tokenizer.encode(word, add_special_tokens=False).ids
        v = self._table[ids].mean(axis=0) if ids else np.zeros(self.dim, np.float32)
        v = (v / (float(np.linalg.norm(v)) or 1.0)).astype(np.float32)
        if len(self._cache) >= MAX_CACHED_WORDS:
            self._cache.clear()
        self._cache[word] = v
        return v

    def matrix(self, words: list[str]) -> Vector:
        if not words:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self.vector(w) for w in words])


_LOAD_LOCK = threading.Lock()


def packaged_word_vectors() -> WordVectors | None:
    """The MiniLM package's word-piece vectors, or None when the package is not installed.
    Loaded once per process: the threads of a worker that all start at once wait for the
    first one instead of each reading the weights."""
    with _LOAD_LOCK:
        return _load_packaged()


@lru_cache(maxsize=1)
def _load_packaged() -> WordVectors | None:
    from bus.errors import ConfigError
    from workers.embeddings.bert_onnx import read_safetensors
    from workers.embeddings.minilm import packaged_model_dir

    try:
        model_dir = packaged_model_dir()
        weights = read_safetensors(
            model_dir / "model.safetensors",
            only=lambda name: name.endswith("word_embeddings.weight"),
        )
    except (ConfigError, OSError, ValueError):  # not installed or unreadable: exact matching
        return None
    table = next((v for k, v in weights.items() if k.endswith("word_embeddings.weight")), None)
    if table is None:
        return None
    return WordVectors(table, model_dir / "tokenizer.json")

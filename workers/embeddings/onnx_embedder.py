"""A sentence embedder run by onnxruntime: a packaged model, no network, no torch.

Texts are tokenised with the model's own ``tokenizer.json`` (HF ``tokenizers``), sorted
by length and batched so little time goes to padding, then run through the ONNX graph
built by :mod:`workers.embeddings.bert_onnx`. Outputs are unit-length float32 vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bus.errors import ConfigError
from workers.ports import Vector


class OnnxEmbedder:
    """A :class:`workers.ports.Embedder` over an ONNX sentence encoder."""

    def __init__(
        self,
        onnx_path: Path,
        tokenizer_path: Path,
        *,
        name: str,
        dim: int,
        max_tokens: int = 256,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        try:
            import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ConfigError(
                "the ONNX embedder needs `onnxruntime` and `tokenizers`; install them or "
                "choose the `hashing` embedder"
            ) from exc
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # no busy-waiting between ops: on a shared machine the spinning threads steal the
        # cores the other thread needs (measured: 1.35x the docs/s at load ~8 on 2 cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: Sequence[str]) -> Vector:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch([t if t.strip() else " " for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                toks = encodings[i].ids
                ids[row, : len(toks)] = toks
                mask[row, : len(toks)] = 1
            (vectors,) = self._session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
            out[idx] = vectors
        return out

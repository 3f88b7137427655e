"""A sentence embedder run by onnxruntime: a packaged model, no network, no torch.

Texts are tokenised with the model's own ``tokenizer.json`` (HF ``tokenizers``), sorted
by length and cut into small batches of at most ``token_budget`` padded tokens (little
padding, and the [heads, S, S] attention tensors of a batch stay in the CPU cache), then
run through the ONNX graph built by :mod:`workers.embeddings.bert_onnx`. With
``parallel`` > 1 that many threads run batches at once through the one session (each run
single-threaded; onnxruntime releases the GIL and its ``run`` is thread-safe), which uses
the cores better than one run spread over them (docs/benchmarks-ingest.md). Outputs are
unit-length float32 vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

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
        token_budget: int | None = None,
        parallel: int = 1,
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
        self.token_budget = token_budget
        self.parallel = max(1, parallel)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._long: tuple[int, Any] | None = None
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads or self.parallel > 1:
            opts.intra_op_num_threads = threads or 1
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
        lengths = [len(e.ids) for e in encodings]

        def run(idx: list[int]) -> None:
            width = max(lengths[i] for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : lengths[i]] = encodings[i].ids
                mask[row, : lengths[i]] = 1
            (vectors,) = self._session.run(
                ["embedding"], {"input_ids": ids, "attention_mask": mask}
            )
            out[idx] = vectors

        batches = length_batches(lengths, max_rows=self.batch_size, token_budget=self.token_budget)
        if self.parallel == 1 or len(batches) == 1:
            for idx in batches:
                run(idx)
        else:
            with ThreadPoolExecutor(min(self.parallel, len(batches))) as pool:
                for _ in pool.map(run, batches):  # re-raises a failed run's error
                    pass
        return out

    def token_states(self, texts: Sequence[str], *, max_tokens: int = 512) -> list[TokenStates]:
        """Each text's tokens after the encoder, unit length, with their character offsets
        ([CLS] and [SEP] left out): what a reader matches question and sentence tokens by.
        Texts are cut at ``max_tokens`` (512, the model's positions), one run each."""
        results: list[TokenStates] = []
        for text in texts:
            encoding = self._long_tokenizer(max_tokens).encode(text if text.strip() else " ")
            ids, offsets = encoding.ids, encoding.offsets
            feed = np.array([ids], dtype=np.int64)
            (states,) = self._session.run(
                ["tokens"], {"input_ids": feed, "attention_mask": np.ones_like(feed)}
            )
            keep = [i for i, (a, b) in enumerate(offsets) if b > a]
            vectors = states[0][keep]
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            results.append(TokenStates(vectors, [offsets[i] for i in keep]))
        return results

    def _long_tokenizer(self, max_tokens: int) -> Any:
        """The model's tokenizer cut at ``max_tokens`` rather than at the embedder's length."""
        if self._long is None or self._long[0] != max_tokens:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length=max_tokens)
            self._long = (max_tokens, tokenizer)
        return self._long[1]


@dataclass(frozen=True)
class TokenStates:
    """One text's token vectors (unit length, [n, dim]) and their character offsets."""

    vectors: npt.NDArray[np.float32]
    offsets: list[tuple[int, int]]


def length_batches(
    lengths: Sequence[int], *, max_rows: int, token_budget: int | None = None
) -> list[list[int]]:
    """Indices of texts by increasing length, cut into batches of at most ``max_rows`` rows
    and, with ``token_budget``, at most that many padded tokens (rows x the longest row; a
    text longer than the budget is a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        full = len(current) >= max_rows or (
            token_budget is not None and (len(current) + 1) * lengths[i] > token_budget
        )
        if current and full:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches

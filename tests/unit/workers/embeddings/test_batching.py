"""The ONNX embedder's batching: small length-sorted runs, several at once, same vectors.

A tiny random BERT (the graph of ``build_bert_encoder``) and a word-level tokenizer are
built in a temporary directory, so no packaged model is needed.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from workers.embeddings.bert_onnx import build_bert_encoder
from workers.embeddings.onnx_embedder import OnnxEmbedder, length_batches

H, HEADS, LAYERS, FF = 8, 2, 2, 16
WORDS = [
    "[PAD]",
    "[UNK]",
    "the",
    "of",
    "cell",
    "gene",
    "mouse",
    "protein",
    "brain",
    "tumour",
    "growth",
    "signal",
    "blood",
    "vaccine",
    "virus",
    "immune",
]


def _write_model(tmp: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    tensors: dict[str, np.ndarray] = {  # type: ignore[type-arg]
        "embeddings.word_embeddings.weight": rng.normal(0, 0.3, (len(WORDS), H)),
        "embeddings.position_embeddings.weight": rng.normal(0, 0.3, (64, H)),
        "embeddings.token_type_embeddings.weight": rng.normal(0, 0.3, (2, H)),
        "embeddings.LayerNorm.weight": np.ones(H),
        "embeddings.LayerNorm.bias": np.zeros(H),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        shapes = {
            "attention.self.query": (H, H),
            "attention.self.key": (H, H),
            "attention.self.value": (H, H),
            "attention.output.dense": (H, H),
            "intermediate.dense": (FF, H),
            "output.dense": (H, FF),
        }
        for name, shape in shapes.items():
            tensors[f"{p}{name}.weight"] = rng.normal(0, 0.3, shape)
            tensors[f"{p}{name}.bias"] = rng.normal(0, 0.1, shape[0])
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[f"{p}{ln}.weight"] = np.ones(H)
            tensors[f"{p}{ln}.bias"] = np.zeros(H)
    header: dict[str, object] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype=np.float32).tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    (tmp / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))
    (tmp / "config.json").write_text(
        json.dumps({"hidden_size": H, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS})
    )
    build_bert_encoder(tmp, tmp / "m.onnx")

    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp / "tokenizer.json"))
    return tmp / "m.onnx", tmp / "tokenizer.json"


def _texts(n: int) -> list[str]:
    rng = np.random.default_rng(5)
    return [" ".join(rng.choice(WORDS[2:], size=int(rng.integers(1, 40)))) for _ in range(n)]


def test_length_batches_cover_every_text_once_within_the_token_budget() -> None:
    lengths = [5, 40, 3, 3, 12, 60, 7, 1, 25, 9]
    batches = length_batches(lengths, max_rows=3, token_budget=30)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        longest = max(lengths[i] for i in batch)
        # a text longer than the budget runs alone; the others stay within it
        assert len(batch) * longest <= 30 or len(batch) == 1
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)  # shortest first, so little padding


def test_length_batches_without_budget_are_fixed_size() -> None:
    batches = length_batches([4] * 10, max_rows=4)
    assert [len(b) for b in batches] == [4, 4, 2]


@pytest.mark.parametrize(("budget", "parallel"), [(None, 1), (16, 1), (16, 3), (64, 2)])
def test_batching_and_parallel_runs_give_the_vectors_of_one_text_at_a_time(
    tmp_path: Path,
    budget: int | None,
    parallel: int,
) -> None:
    onnx_path, tok_path = _write_model(tmp_path)
    texts = _texts(23)
    one_by_one = OnnxEmbedder(onnx_path, tok_path, name="t", dim=H, batch_size=1)
    want = np.stack([one_by_one.embed([t])[0] for t in texts])
    batched = OnnxEmbedder(
        onnx_path, tok_path, name="t", dim=H, batch_size=8, token_budget=budget, parallel=parallel
    )
    got = batched.embed(texts)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.linalg.norm(got, axis=1) == pytest.approx(np.ones(len(texts)), abs=1e-5)


def test_token_states_are_the_encoders_tokens_with_their_offsets(tmp_path: Path) -> None:
    onnx_path, tok_path = _write_model(tmp_path)
    # the embedder cuts at 4 tokens; the token states reach 512
    embedder = OnnxEmbedder(onnx_path, tok_path, name="t", dim=H, max_tokens=4)
    text = "the gene of the mouse brain signal"
    (states,) = embedder.token_states([text])
    words = text.split()
    assert [text[a:b] for a, b in states.offsets] == words
    ids = np.array([[WORDS.index(w) for w in words]], dtype=np.int64)
    (tokens,) = embedder._session.run(
        ["tokens"], {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    )
    want = tokens[0] / np.linalg.norm(tokens[0], axis=1, keepdims=True)
    np.testing.assert_allclose(states.vectors, want, atol=1e-5)
    (cut,) = embedder.token_states([text], max_tokens=3)
    assert len(cut.offsets) == 3

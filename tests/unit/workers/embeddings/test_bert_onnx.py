"""The ONNX graph built from safetensors computes BERT + mean pooling + L2 norm exactly.

A tiny random BERT (2 layers, hidden 8) is written as safetensors, turned into ONNX by
``build_bert_encoder`` and compared with a plain numpy implementation of the same maths.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort  # type: ignore[import-untyped,unused-ignore]
import pytest

from workers.embeddings.bert_onnx import build_bert_encoder, read_safetensors

H, HEADS, LAYERS, FF, VOCAB = 8, 2, 2, 16, 30
F32 = npt.NDArray[np.float32]


def _weights(rng: np.random.Generator) -> dict[str, F32]:
    def r(*shape: int) -> F32:
        return rng.normal(0, 0.3, shape).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": r(VOCAB, H),
        "embeddings.position_embeddings.weight": r(16, H),
        "embeddings.token_type_embeddings.weight": r(2, H),
        "embeddings.LayerNorm.weight": 1 + r(H),
        "embeddings.LayerNorm.bias": r(H),
    }
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            w[f"{p}attention.self.{name}.weight"] = r(H, H)
            w[f"{p}attention.self.{name}.bias"] = r(H)
        w[f"{p}attention.output.dense.weight"] = r(H, H)
        w[f"{p}attention.output.dense.bias"] = r(H)
        w[f"{p}attention.output.LayerNorm.weight"] = 1 + r(H)
        w[f"{p}attention.output.LayerNorm.bias"] = r(H)
        w[f"{p}intermediate.dense.weight"] = r(FF, H)
        w[f"{p}intermediate.dense.bias"] = r(FF)
        w[f"{p}output.dense.weight"] = r(H, FF)
        w[f"{p}output.dense.bias"] = r(H)
        w[f"{p}output.LayerNorm.weight"] = 1 + r(H)
        w[f"{p}output.LayerNorm.bias"] = r(H)
    return w


def _write_safetensors(path: Path, tensors: dict[str, F32]) -> None:
    header: dict[str, object] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def _ln(x: F32, g: F32, b: F32) -> F32:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    out: F32 = (x - mu) / np.sqrt(var + 1e-12) * g + b
    return out


def _reference(w: dict[str, F32], ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> F32:
    x = _reference_tokens(w, ids, mask)
    m = mask[:, :, None].astype(np.float32)
    pooled = (x * m).sum(1) / m.sum(1)
    out: F32 = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return out


def _reference_tokens(
    w: dict[str, F32], ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]
) -> F32:
    from scipy.special import erf  # type: ignore[import-untyped,unused-ignore]

    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: ids.shape[1]]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    bias = (1.0 - mask[:, None, None, :]) * -1e4
    d = H // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."

        def lin(v: F32, n: str, p: str = p) -> F32:
            out: F32 = v @ w[f"{p}{n}.weight"].T + w[f"{p}{n}.bias"]
            return out

        def split(v: F32) -> F32:
            out: F32 = v.reshape(*v.shape[:2], HEADS, d).transpose(0, 2, 1, 3)
            return out

        q, k, v = (split(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(*x.shape)
        x = _ln(
            x + lin(ctx, "attention.output.dense"),
            w[f"{p}attention.output.LayerNorm.weight"],
            w[f"{p}attention.output.LayerNorm.bias"],
        )
        h = lin(x, "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = _ln(
            x + lin(h, "output.dense"),
            w[f"{p}output.LayerNorm.weight"],
            w[f"{p}output.LayerNorm.bias"],
        )
    return x


def test_built_graph_matches_numpy_bert(tmp_path: Path) -> None:
    w = _weights(np.random.default_rng(7))
    _write_safetensors(tmp_path / "model.safetensors", w)
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": H,
                "num_attention_heads": HEADS,
                "num_hidden_layers": LAYERS,
                "layer_norm_eps": 1e-12,
            }
        )
    )
    assert read_safetensors(tmp_path / "model.safetensors").keys() == w.keys()
    build_bert_encoder(tmp_path, tmp_path / "m.onnx")
    ids = np.array([[1, 5, 9, 2, 0, 0], [1, 7, 3, 8, 4, 2]], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    mask[1] = 1
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got, tokens = session.run(["embedding", "tokens"], {"input_ids": ids, "attention_mask": mask})
    np.testing.assert_allclose(got, _reference(w, ids, mask), atol=1e-4)
    np.testing.assert_allclose(tokens, _reference_tokens(w, ids, mask), atol=1e-4)
    assert np.linalg.norm(got, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    # padding must not change a text's vector
    (alone,) = session.run(
        ["embedding"], {"input_ids": ids[:1, :4], "attention_mask": mask[:1, :4]}
    )
    np.testing.assert_allclose(alone[0], got[0], atol=1e-5)


def _tiny_float_model(tmp_path: Path, *, seed: int) -> dict[str, F32]:
    """A random tiny BERT's weights, built into ``tmp_path / "m.onnx"``."""
    w = _weights(np.random.default_rng(seed))
    _write_safetensors(tmp_path / "model.safetensors", w)
    (tmp_path / "config.json").write_text(
        json.dumps({"hidden_size": H, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS})
    )
    build_bert_encoder(tmp_path, tmp_path / "m.onnx")
    return w


def test_int8_graph_quantises_weight_matmuls_and_stays_close(tmp_path: Path) -> None:
    import onnx

    from workers.embeddings.bert_onnx import quantize_int8

    w = _tiny_float_model(tmp_path, seed=11)
    quantize_int8(tmp_path / "m.onnx", tmp_path / "m.int8.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.int8.onnx")).graph.node]
    # 6 weight MatMuls per layer become integer ones; the two attention products stay float
    assert ops.count("MatMulInteger") == 6 * LAYERS
    assert not (tmp_path / "m.int8.opt.onnx").exists()  # the intermediate file is removed
    ids = np.array([[1, 5, 9, 2, 0, 0], [1, 7, 3, 8, 4, 2]], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    session = ort.InferenceSession(
        str(tmp_path / "m.int8.onnx"), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
    want = _reference(w, ids, mask)
    assert np.linalg.norm(got, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert (got * want).sum(axis=1).min() > 0.95  # cosine to the float model


def _int8_weights(path: Path) -> list[np.ndarray]:
    import onnx
    from onnx import numpy_helper

    arrays = [
        numpy_helper.to_array(t)
        for t in onnx.load(str(path)).graph.initializer
        if t.data_type == onnx.TensorProto.INT8
    ]
    return [a for a in arrays if a.ndim == 2]  # the weights, not their zero points


def test_reduce_range_keeps_int8_weights_to_seven_bits(tmp_path: Path) -> None:
    """For CPUs without VNNI the weights use 7 bits, so AVX2's pairwise int16 sums of
    u8 x s8 products cannot saturate; the vectors stay close to the float model."""
    from workers.embeddings.bert_onnx import quantize_int8

    w = _tiny_float_model(tmp_path, seed=12)
    quantize_int8(tmp_path / "m.onnx", tmp_path / "full.onnx")
    quantize_int8(tmp_path / "m.onnx", tmp_path / "r.onnx", reduce_range=True)
    full, reduced = _int8_weights(tmp_path / "full.onnx"), _int8_weights(tmp_path / "r.onnx")
    assert len(full) == len(reduced) == 6 * LAYERS
    assert max(int(np.abs(a.astype(np.int16)).max()) for a in full) == 127
    assert max(int(np.abs(a.astype(np.int16)).max()) for a in reduced) <= 64
    ids = np.array([[1, 5, 9, 2, 0, 0], [1, 7, 3, 8, 4, 2]], dtype=np.int64)
    mask = (ids != 0).astype(np.int64)
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
    assert (got * _reference(w, ids, mask)).sum(axis=1).min() > 0.95

"""`auto` picks the embedder by what the CPU's int8 kernels can do (session 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.embeddings import has_int8_dot, resolve_embedder, vector_space

AVX2 = "fpu vme sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2"


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(
        "".join(
            f"processor\t: {n}\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n\n" for n in range(2)
        )
    )
    return path


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (AVX2, "minilm-256"),
        (AVX2 + " avx512f avx512bw avx512_vnni avx512_bf16", "minilm-int8-256"),
        (AVX2 + " avx_vnni", "minilm-int8-256"),
        ("fp asimd asimddp", "minilm-int8-256"),  # not x86: onnxruntime's int8 uses sdot there
    ],
)
def test_auto_uses_int8_only_where_the_cpu_has_int8_dot_products(
    tmp_path: Path, flags: str, expected: str
) -> None:
    assert resolve_embedder("auto", cpuinfo=_cpuinfo(tmp_path, flags)) == expected


def test_explicit_names_and_unreadable_cpuinfo(tmp_path: Path) -> None:
    assert (
        resolve_embedder("minilm-int8-256", cpuinfo=_cpuinfo(tmp_path, AVX2)) == "minilm-int8-256"
    )
    assert has_int8_dot(tmp_path / "missing") is True


def test_precision_does_not_change_the_vector_space() -> None:
    assert vector_space("all-MiniLM-L6-v2-int8@256") == vector_space("all-MiniLM-L6-v2@256")
    assert vector_space("all-MiniLM-L6-v2-int8@128") != vector_space("all-MiniLM-L6-v2@256")
    assert vector_space("hashing-256") == "hashing-256"

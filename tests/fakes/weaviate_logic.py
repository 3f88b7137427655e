"""What the fake Weaviate computes: filters, BM25, cosine, hybrid fusion, property codecs.

Pure functions over plain dicts and the generated protobuf messages; no sockets here.
The hybrid search follows Weaviate's documented behaviour closely enough to answer
honestly (a keyword list and a vector list fused by ``alpha``), not bit-for-bit.
"""

from __future__ import annotations

import array
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]  # no stubs installed
from weaviate.proto.v1 import base_pb2, base_search_pb2, batch_pb2, properties_pb2

_TOKEN = re.compile(r"[a-z0-9]+")
Op = base_pb2.Filters


@dataclass
class Recorded:
    """One request the fake received."""

    transport: str  # "rest" | "grpc"
    method: str  # HTTP method, or the gRPC method name ("Search", "BatchObjects", ...)
    path: str  # URL path, or the full gRPC method path
    body: Any  # parsed JSON body, or the request protobuf message
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names


@dataclass
class Collection:
    schema: dict[str, Any]
    tenants: dict[str, dict[uuid.UUID, StoredObject]] = field(default_factory=dict)
    objects: dict[uuid.UUID, StoredObject] = field(default_factory=dict)  # non-tenant data

    @property
    def multi_tenant(self) -> bool:
        return bool(self.schema.get("multiTenancyConfig", {}).get("enabled"))


@dataclass
class StoredObject:
    uuid: uuid.UUID
    properties: dict[str, Any]
    vectors: dict[str, list[float]]


# --- property codecs --------------------------------------------------------------------------


def prop_types(schema: Mapping[str, Any]) -> dict[str, str]:
    """``{property: dataType}`` for a collection's REST schema."""
    return {p["name"]: p["dataType"][0] for p in schema.get("properties", [])}


def decode_batch_properties(
    props: batch_pb2.BatchObject.Properties, types: Mapping[str, str]
) -> dict[str, Any]:
    """A BatchObject's properties as a dict; numbers become ints where the schema says int."""
    out: dict[str, Any] = (
        MessageToDict(props.non_ref_properties) if props.HasField("non_ref_properties") else {}
    )
    for arr in props.text_array_properties:
        out[arr.prop_name] = list(arr.values)
    for iarr in props.int_array_properties:
        out[iarr.prop_name] = list(iarr.values)
    for narr in props.number_array_properties:
        values = list(narr.values) or list(array.array("d", narr.values_bytes))
        out[narr.prop_name] = values
    for barr in props.boolean_array_properties:
        out[barr.prop_name] = list(barr.values)
    for name in props.empty_list_props:
        out[name] = []
    for name, value in list(out.items()):
        kind = types.get(name)
        if kind == "int" and isinstance(value, float) and value.is_integer():
            out[name] = int(value)
    return out


def decode_vectors(obj: batch_pb2.BatchObject) -> dict[str, list[float]]:
    vectors: dict[str, list[float]] = {}
    for vec in obj.vectors:
        vectors[vec.name or "default"] = list(array.array("f", vec.vector_bytes))
    if obj.vector_bytes:
        vectors.setdefault("default", list(array.array("f", obj.vector_bytes)))
    elif len(obj.vector):
        vectors.setdefault("default", list(obj.vector))
    return vectors


def encode_value(value: Any, kind: str | None) -> properties_pb2.Value:
    if value is None:
        return properties_pb2.Value(null_value=0)
    if kind == "text[]" or (kind is None and isinstance(value, list)):
        return properties_pb2.Value(
            list_value=properties_pb2.ListValue(
                text_values=properties_pb2.TextValues(values=[str(v) for v in value])
            )
        )
    if isinstance(value, bool):
        return properties_pb2.Value(bool_value=value)
    if kind == "int" or isinstance(value, int):
        return properties_pb2.Value(int_value=int(value))
    if isinstance(value, float):
        return properties_pb2.Value(number_value=value)
    return properties_pb2.Value(text_value=str(value))


def encode_properties(
    props: Mapping[str, Any], wanted: Iterable[str], types: Mapping[str, str]
) -> properties_pb2.Properties:
    fields = {
        name: encode_value(props.get(name), types.get(name)) for name in wanted if name in props
    }
    return properties_pb2.Properties(fields=fields)


# --- filters ----------------------------------------------------------------------------------


def _filter_values(f: base_pb2.Filters) -> list[Any]:
    which = f.WhichOneof("test_value")
    if which is None:
        return []
    raw = getattr(f, which)
    if which.endswith("_array"):
        return list(raw.values)
    return [raw]


def _filter_property(f: base_pb2.Filters) -> str:
    if f.HasField("target"):
        return str(f.target.property)
    return str(f.on[-1]) if f.on else ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def matches(props: Mapping[str, Any], f: base_pb2.Filters) -> bool:
    """Does an object with ``props`` pass the filter ``f``?"""
    op = f.operator
    if op == Op.OPERATOR_AND:
        return all(matches(props, sub) for sub in f.filters)
    if op == Op.OPERATOR_OR:
        return any(matches(props, sub) for sub in f.filters)
    if op == Op.OPERATOR_NOT:
        return not all(matches(props, sub) for sub in f.filters)
    have = _as_list(props.get(_filter_property(f)))
    want = _filter_values(f)
    if op == Op.OPERATOR_EQUAL:
        return bool(want) and want[0] in have
    if op == Op.OPERATOR_NOT_EQUAL:
        return bool(want) and want[0] not in have
    if op == Op.OPERATOR_CONTAINS_ANY:
        return any(w in have for w in want)
    if op == Op.OPERATOR_CONTAINS_ALL:
        return all(w in have for w in want)
    if op == Op.OPERATOR_CONTAINS_NONE:
        return not any(w in have for w in want)
    if op == Op.OPERATOR_IS_NULL:
        return (not have) == bool(want[0]) if want else not have
    if op in (
        Op.OPERATOR_GREATER_THAN,
        Op.OPERATOR_GREATER_THAN_EQUAL,
        Op.OPERATOR_LESS_THAN,
        Op.OPERATOR_LESS_THAN_EQUAL,
    ):
        if not have or not want:
            return False
        a, b = have[0], want[0]
        return bool(
            {
                Op.OPERATOR_GREATER_THAN: a > b,
                Op.OPERATOR_GREATER_THAN_EQUAL: a >= b,
                Op.OPERATOR_LESS_THAN: a < b,
                Op.OPERATOR_LESS_THAN_EQUAL: a <= b,
            }[op]
        )
    raise ValueError(f"filter operator {Op.Operator.Name(op)} is not supported by the fake")


# --- scoring ----------------------------------------------------------------------------------


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def bm25_scores(
    objects: Sequence[StoredObject],
    query: str,
    properties: Sequence[str],
    *,
    k1: float = 1.2,
    b: float = 0.75,
) -> dict[uuid.UUID, float]:
    """BM25 of ``query`` over the concatenated ``properties`` of each object (> 0 only)."""
    docs = {
        o.uuid: tokens(" ".join(str(o.properties.get(p) or "") for p in properties))
        for o in objects
    }
    if not docs:
        return {}
    avg = sum(len(d) for d in docs.values()) / len(docs) or 1.0
    n = len(docs)
    scores: dict[uuid.UUID, float] = {}
    for term in dict.fromkeys(tokens(query)):
        df = sum(1 for d in docs.values() if term in d)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for oid, d in docs.items():
            tf = d.count(term)
            if tf:
                denom = tf + k1 * (1 - b + b * len(d) / avg)
                scores[oid] = scores.get(oid, 0.0) + idf * tf * (k1 + 1) / denom
    return scores


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        raise ValueError(f"vector lengths differ: {len(a)} != {len(b)}")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def query_vector(hybrid: base_search_pb2.Hybrid) -> tuple[str | None, list[float] | None]:
    """(target vector name, vector) from a Hybrid request, whichever field the client used."""
    target = hybrid.targets.target_vectors[0] if hybrid.targets.target_vectors else None
    if not target and hybrid.target_vectors:
        target = hybrid.target_vectors[0]
    for vec in hybrid.vectors:
        return target or vec.name or None, list(array.array("f", vec.vector_bytes))
    if hybrid.vector_bytes:
        return target, list(array.array("f", hybrid.vector_bytes))
    if len(hybrid.vector):
        return target, list(hybrid.vector)
    return target, None


def hybrid_alpha(hybrid: base_search_pb2.Hybrid) -> float:
    return float(hybrid.alpha_param if hybrid.use_alpha_param else hybrid.alpha)


def fuse(
    keyword: Mapping[uuid.UUID, float],
    vector: Mapping[uuid.UUID, float],
    alpha: float,
    fusion: int,
) -> list[tuple[uuid.UUID, float]]:
    """Weaviate's two fusions: ``rankedFusion`` (RRF, k=60) and ``relativeScoreFusion``."""
    combined: dict[uuid.UUID, float] = {}
    if fusion == base_search_pb2.Hybrid.FUSION_TYPE_RANKED:
        for weight, scores in ((1 - alpha, keyword), (alpha, vector)):
            if weight <= 0:
                continue  # alpha 0 is pure keyword search, alpha 1 pure vector search
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1], str(kv[0])))
            for rank, (oid, _) in enumerate(ranked):
                combined[oid] = combined.get(oid, 0.0) + weight / (rank + 60)
    else:
        for weight, scores in ((1 - alpha, keyword), (alpha, vector)):
            if weight <= 0 or not scores:
                continue
            lo, hi = min(scores.values()), max(scores.values())
            for oid, s in scores.items():
                norm = (s - lo) / (hi - lo) if hi > lo else 1.0
                combined[oid] = combined.get(oid, 0.0) + weight * norm
    return sorted(combined.items(), key=lambda kv: (-kv[1], str(kv[0])))

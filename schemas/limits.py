"""Bounds on free-form JSON (job metadata, user context), checked before anything is stored.

Nothing is stored that cannot be read back (docs/reliability.md, "Validate before you
write"): a value nested deeper than a JSON parser will read, a number JSON cannot carry
(NaN, ±Infinity, an integer past 64 bits), a non-string key or a document past its size
cap is refused at the boundary with the path of the offending value. The walk is iterative,
so a hostile 100,000-deep document costs a loop, not a ``RecursionError``. Pure; no I/O.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

MAX_JSON_DEPTH = 32
MAX_METADATA_BYTES = 64 * 1024
MAX_USER_CONTEXT_BYTES = 256 * 1024
MAX_JSON_INT = 2**63 - 1


def check_json_object(
    value: Any, *, max_bytes: int, max_depth: int = MAX_JSON_DEPTH
) -> dict[str, Any]:
    """``value`` if it is a JSON object within the bounds; else ``ValueError`` naming the path.

    Accepts only what ``json.loads`` gives back unchanged: dicts with string keys, lists,
    strings, finite floats, 64-bit integers, booleans and null.
    """
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {_kind(value)}")
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels at {path or '$'}")
            for key, child in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"object keys must be strings: {key!r} at {path or '$'}")
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels at {path or '$'}")
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(node))
        elif isinstance(node, bool) or node is None or isinstance(node, str):
            continue
        elif isinstance(node, int):
            if abs(node) > MAX_JSON_INT:
                raise ValueError(f"integer out of the 64-bit range at {path}")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError(f"numbers must be finite (not NaN or Infinity) at {path}")
        else:
            raise ValueError(f"{_kind(node)} is not a JSON value at {path}")
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    if size > max_bytes:
        raise ValueError(f"{size} bytes as JSON; at most {max_bytes} are allowed")
    return value


def metadata(value: Any) -> dict[str, Any]:
    """A job's ``metadata``: a JSON object of at most ``MAX_METADATA_BYTES``."""
    return check_json_object(value, max_bytes=MAX_METADATA_BYTES)


def user_context(value: Any) -> dict[str, Any]:
    """A user's real-time context: a JSON object of at most ``MAX_USER_CONTEXT_BYTES``."""
    return check_json_object(value, max_bytes=MAX_USER_CONTEXT_BYTES)


Metadata = Annotated[
    dict[str, Any],
    BeforeValidator(metadata),
    Field(
        description=f"free-form JSON object, at most {MAX_METADATA_BYTES} bytes "
        f"and {MAX_JSON_DEPTH} levels deep"
    ),
]


def _kind(value: Any) -> str:
    return type(value).__name__


__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_METADATA_BYTES",
    "MAX_USER_CONTEXT_BYTES",
    "Metadata",
    "check_json_object",
    "metadata",
    "user_context",
]

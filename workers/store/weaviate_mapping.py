"""Pure mapping between ragrelay chunks and Weaviate objects. No I/O here.

* Tenants: Weaviate tenant names allow ``[A-Za-z0-9_-]{1,64}``; ragrelay tenants also allow
  ``.``. :func:`weaviate_tenant` is injective: ``_`` is the escape character (``_`` → ``_u``,
  ``.`` → ``_d``); a result longer than 64 becomes ``_h`` + 40 hex of its SHA-256 (``_h``
  is never produced by escaping). ``acme``, ``tenant-a``, ``default`` map to themselves.
* UUIDs: ``uuid5(CHUNK_NAMESPACE, tenant + "\\x1f" + chunk_id)``; the same chunk re-ingested
  lands on the same object (idempotent), and two tenants never share an id.
* Properties: ``text``, ``title`` (BM25-searchable), ``chunk_id``, ``doc_id``, ``source``
  (whole-value ``field`` tokens, filterable), ``chunk_index`` (int), ``metadata`` (the
  metadata as a JSON string, not indexed: returned verbatim), and ``meta_kv`` (text[] of
  ``key=<canonical JSON of value>``, filterable) so any top-level metadata key can be
  filtered exactly — Weaviate cannot filter inside a JSON string or a nested object.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bus.errors import ConfigError
from bus.redaction import display_url
from schemas import Chunk
from workers.store.batch import canonical_json

CHUNK_NAMESPACE = uuid.UUID("6f1d3c2a-8b7e-5f40-9a21-3c0de5a7b9e1")
VECTOR_NAME = "default"
SEARCH_PROPERTIES = ("text", "title")
RETURN_PROPERTIES = ("chunk_id", "doc_id", "title", "text", "source", "chunk_index", "metadata")
FUSIONS = ("relative_score", "ranked")

_TENANT_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_COLLECTION_OK = re.compile(r"^[A-Z][_0-9A-Za-z]{0,254}$")


def weaviate_tenant(tenant: str) -> str:
    """The Weaviate tenant name for a ragrelay tenant (injective; see the module docstring)."""
    if not tenant:
        raise ValueError("tenant is empty")
    escaped = tenant.replace("_", "_u").replace(".", "_d")
    if len(escaped) > 64 or not _TENANT_OK.match(escaped):
        return "_h" + hashlib.sha256(tenant.encode()).hexdigest()[:40]
    return escaped


def chunk_uuid(tenant: str, chunk_id: str) -> uuid.UUID:
    return uuid.uuid5(CHUNK_NAMESPACE, f"{tenant}\x1f{chunk_id}")


def _normalise(value: Any) -> Any:
    """Integral floats become ints so ``1`` and ``1.0`` filter alike (as Python compares them)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def meta_term(key: str, value: Any) -> str:
    """The ``meta_kv`` entry that a filter ``{key: value}`` matches exactly."""
    return f"{key}={canonical_json(_normalise(value))}"


def chunk_properties(chunk: Chunk) -> dict[str, Any]:
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "text": chunk.text,
        "source": chunk.source,
        "chunk_index": chunk.chunk_index,
        "metadata": json.dumps(chunk.metadata, ensure_ascii=False),
        "meta_kv": [meta_term(k, v) for k, v in chunk.metadata.items()],
    }


def chunk_from_properties(props: Mapping[str, Any]) -> Chunk:
    raw_meta = props.get("metadata") or "{}"
    metadata = json.loads(raw_meta) if isinstance(raw_meta, str) else dict(raw_meta)
    return Chunk(
        chunk_id=str(props.get("chunk_id") or ""),
        doc_id=str(props.get("doc_id") or ""),
        title=str(props.get("title") or ""),
        text=str(props.get("text") or ""),
        source=str(props.get("source") or "internal"),
        chunk_index=int(props.get("chunk_index") or 0),
        metadata=metadata,
    )


def embed_text(chunk: Chunk) -> str:
    """What gets embedded for a chunk: its title (when any) and its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


@dataclass(frozen=True)
class Endpoint:
    http_host: str
    http_port: int
    http_secure: bool
    grpc_host: str
    grpc_port: int
    grpc_secure: bool

    @property
    def url(self) -> str:
        scheme = "https" if self.http_secure else "http"
        return f"{scheme}://{self.http_host}:{self.http_port}"


def parse_endpoint(url: str, grpc_port: int) -> Endpoint:
    """``RAGRELAY_WEAVIATE_URL`` (``http(s)://host[:port]``) plus the gRPC port."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"RAGRELAY_WEAVIATE_URL={display_url(url)} is not a URL like http://localhost:8080 "
            "(scheme http or https, then the host)."
        )
    secure = parts.scheme == "https"
    try:
        port = parts.port or (443 if secure else 80)
    except ValueError as exc:
        raise ConfigError(f"RAGRELAY_WEAVIATE_URL={display_url(url)} has an invalid port.") from exc
    if not 0 < grpc_port < 65536:
        raise ConfigError(f"RAGRELAY_WEAVIATE_GRPC_PORT={grpc_port} is not a TCP port.")
    return Endpoint(parts.hostname, port, secure, parts.hostname, grpc_port, secure)


def check_collection_name(name: str) -> str:
    if not _COLLECTION_OK.match(name):
        raise ConfigError(
            f"RAGRELAY_WEAVIATE_COLLECTION={name!r} is not a Weaviate collection name: "
            "start with an upper-case letter, then letters, digits or '_'."
        )
    return name


def check_fusion(name: str) -> str:
    value = name.strip().lower().replace("-", "_")
    if value not in FUSIONS:
        raise ConfigError(f"RAGRELAY_WEAVIATE_FUSION={name!r}: use one of {', '.join(FUSIONS)}.")
    return value


__all__ = [
    "CHUNK_NAMESPACE",
    "RETURN_PROPERTIES",
    "SEARCH_PROPERTIES",
    "VECTOR_NAME",
    "Endpoint",
    "check_collection_name",
    "check_fusion",
    "chunk_from_properties",
    "chunk_properties",
    "chunk_uuid",
    "embed_text",
    "meta_term",
    "parse_endpoint",
    "weaviate_tenant",
]

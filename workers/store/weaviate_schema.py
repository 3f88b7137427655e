"""The collection ragrelay creates in Weaviate, and filters over it. No I/O here.

See :mod:`workers.store.weaviate_mapping` for why ``metadata`` is a JSON string plus a
``meta_kv`` text array.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from weaviate.classes.config import DataType, Property, Tokenization
from weaviate.classes.query import Filter

from workers.store.weaviate_mapping import meta_term

if TYPE_CHECKING:
    from weaviate.collections.classes.filters import _Filters


def where_filter(filters: Mapping[str, Any]) -> tuple[bool, _Filters | None]:
    """(can anything match, the Weaviate filter): an AND of exact matches, None for no filter."""
    parts: list[_Filters] = []
    for key, want in filters.items():
        if key in ("doc_id", "source"):
            if not isinstance(want, str):
                return False, None
            parts.append(Filter.by_property(key).equal(want))
        else:
            parts.append(Filter.by_property("meta_kv").contains_any([meta_term(key, want)]))
    if not parts:
        return True, None
    return True, parts[0] if len(parts) == 1 else Filter.all_of(parts)


def _field(name: str, description: str) -> Property:
    return Property(
        name=name,
        data_type=DataType.TEXT,
        tokenization=Tokenization.FIELD,
        index_searchable=False,
        index_filterable=True,
        description=description,
    )


PROPERTIES = [
    Property(name="text", data_type=DataType.TEXT, tokenization=Tokenization.WORD),
    Property(name="title", data_type=DataType.TEXT, tokenization=Tokenization.WORD),
    _field("chunk_id", "stable chunk id: doc_id#index"),
    _field("doc_id", "document id"),
    _field("source", "where the document came from"),
    Property(name="chunk_index", data_type=DataType.INT),
    Property(
        name="metadata",
        data_type=DataType.TEXT,
        index_searchable=False,
        index_filterable=False,
        description="chunk metadata as a JSON string",
    ),
    Property(
        name="meta_kv",
        data_type=DataType.TEXT_ARRAY,
        tokenization=Tokenization.FIELD,
        index_searchable=False,
        index_filterable=True,
        description="key=<canonical JSON> per top-level metadata key, for exact filters",
    ),
]


__all__ = ["PROPERTIES", "where_filter"]

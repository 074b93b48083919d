"""Whole-index numbers for the operator (`cairn index stats`, `cairn doctor`); never served to
an API caller, who sees only counts within their groups (`/health`)."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from retrieval.index_schema import FileRecord, files_collection
from retrieval.store import IndexStore


class IndexStats(BaseModel):
    collection: str
    documents: int
    chunks: int
    file_types: dict[str, int]
    sources: dict[str, int]
    last_ingest: str | None


def index_stats(store: IndexStore, collection: str) -> IndexStats:
    """The collection must exist (CollectionMissingError otherwise)."""
    files = files_collection(collection)
    records = (
        [FileRecord.model_validate(p.payload) for p in store.scroll(files)] if store.collection_exists(files) else []
    )
    return IndexStats(
        collection=collection,
        documents=len(records),
        chunks=store.count(collection),
        file_types=dict(Counter(r.file_type for r in records).most_common()),
        sources=dict(Counter(r.source for r in records).most_common()),
        last_ingest=max((r.indexed_at for r in records), default=None),
    )

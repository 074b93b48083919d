"""Whole-index numbers for the operator (`cairn index stats`, `cairn doctor`); never served to
an API caller, who sees only counts within their groups (`/health`)."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from retrieval.index_schema import FileRecord, Filter, HasVector, files_collection, rerank_vector_name
from retrieval.store import IndexStore


class RerankVectorProgress(BaseModel):
    """How far the background fill of the reranking model's vectors has got."""

    model: str
    vector: str  # the named vector in the collection
    filled: int  # chunks holding it
    chunks: int

    @property
    def complete(self) -> bool:
        return self.filled >= self.chunks


class IndexStats(BaseModel):
    collection: str
    documents: int
    chunks: int
    file_types: dict[str, int]
    sources: dict[str, int]
    last_ingest: str | None
    rerank_vectors: RerankVectorProgress | None = None  # None: no embedding reranker configured


def rerank_vector_progress(
    store: IndexStore, collection: str, model: str, within: Filter | None = None
) -> RerankVectorProgress:
    """Filled chunks of ``model``'s vector, among the chunks ``within`` selects (all by default)."""
    vector = rerank_vector_name(model)
    chunks = store.count(collection, within)
    filled = 0
    if vector in store.vector_sizes(collection):
        filled = store.count(collection, Filter(must=(HasVector(vector),)).and_(within))
    return RerankVectorProgress(model=model, vector=vector, filled=filled, chunks=chunks)


def index_stats(store: IndexStore, collection: str, rerank_model: str | None = None) -> IndexStats:
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
        rerank_vectors=rerank_vector_progress(store, collection, rerank_model) if rerank_model else None,
    )

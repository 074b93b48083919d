"""One storage interface with two Qdrant backends (embedded engine, server client)."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Protocol, Sequence

from retrieval.index_schema import ChunkPoint, Filter, HybridQuery, HybridResult, ScoredPoint


class StoreError(RuntimeError):
    """A storage problem a user can act on; the message says what to do."""


class IndexLockedError(StoreError):
    pass


class CollectionMissingError(StoreError):
    pass


class IncompatibleIndexError(StoreError):
    """The index was built with settings (e.g. a vector size) that the current ones cannot use."""


class IndexStore(Protocol):
    """What ingestion writes through and search reads through.

    ``collection`` may be an alias; every method resolves it.
    """

    concurrent_reads: bool  # True: searches from several threads may run at once

    def collection_exists(self, collection: str) -> bool: ...

    def create_chunk_collection(self, collection: str, dense_size: int) -> None:
        """Named dense vector (cosine) + named sparse vector (IDF) + payload indexes."""

    def create_record_collection(self, collection: str) -> None:
        """Payload-only records (no vectors), with a keyword index on ``source``."""

    def dense_size(self, collection: str) -> int:
        """The size of the collection's dense vectors (fixed when it was created)."""

    def vector_sizes(self, collection: str) -> dict[str, int]:
        """Every named dense vector of the collection with its size (the first stage's and any
        reranking model's)."""

    def add_vector(self, collection: str, name: str, size: int) -> None:
        """A new named dense vector (cosine) on an existing collection; points get it as it is set."""

    def delete_vector(self, collection: str, name: str) -> None:
        """The named vector goes, from the collection's config and from every point."""

    def set_vectors(self, collection: str, name: str, vectors: Mapping[str, Sequence[float]]) -> int:
        """Set the named vector of existing points (id -> vector), leaving their other vectors and
        payload as they are. A point deleted meanwhile is skipped; returns the points written."""

    def delete_collection(self, collection: str) -> None: ...

    def list_collections(self) -> list[str]: ...

    def upsert_chunks(self, collection: str, points: Sequence[ChunkPoint]) -> None: ...

    def upsert_records(self, collection: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None: ...

    def delete(self, collection: str, filter: Filter) -> None: ...

    def delete_ids(self, collection: str, ids: Sequence[str]) -> None: ...

    def set_payload(self, collection: str, payload: dict[str, Any], filter: Filter) -> None: ...

    def scroll(
        self,
        collection: str,
        filter: Filter | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[ScoredPoint]:
        """Every matching point (score 0), payload limited to ``fields`` when given, at most
        ``limit`` of them when given."""

    def scroll_chunks(self, collection: str) -> Iterator[ChunkPoint]:
        """Every chunk with its stored dense and sparse vectors."""

    def retrieve(self, collection: str, ids: Sequence[str]) -> list[ScoredPoint]: ...

    def count(self, collection: str, filter: Filter | None = None) -> int: ...

    def hybrid_query(self, collection: str, query: HybridQuery) -> HybridResult: ...

    def rescore(self, collection: str, name: str, vector: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        """Cosine of ``vector`` and each point's named vector, for the points of ``ids`` that hold
        one (the others are left out), computed by Qdrant."""

    def flush(self) -> None:
        """Make every write so far durable."""

    def optimize(self, collection: str) -> None:
        """Build search indexes (HNSW) after bulk writes; a no-op where the server does it."""

    # aliases: a stable name that can be switched atomically to a freshly built collection
    def set_alias(self, alias: str, collection: str) -> None: ...

    def aliases(self) -> dict[str, str]: ...

    def close(self) -> None: ...

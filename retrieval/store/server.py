"""Server backend: a Qdrant server (or cluster) through qdrant-client.

Tests run it against qdrant-client's local mode, which speaks the same API.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import httpx
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from retrieval.encoders import SparseVec
from retrieval.index_schema import (
    DENSE_VECTOR,
    DOC_CHUNKS_KEY,
    FLOAT_INDEXES,
    KEYWORD_INDEXES,
    SPARSE_VECTOR,
    ChunkPoint,
    Filter,
    HybridQuery,
    HybridResult,
    HasVector,
    MatchAny,
    Range,
    ScoredPoint,
)
from retrieval.store.base import CollectionMissingError, StoreError

_SCROLL_PAGE = 1000


def _to_filter(spec: Filter | None) -> models.Filter | None:
    if spec is None or not (spec.must or spec.must_not):
        return None

    def condition(c) -> models.FieldCondition:
        if isinstance(c, MatchAny):
            return models.FieldCondition(key=c.key, match=models.MatchAny(any=list(c.values)))
        if isinstance(c, Range):
            return models.FieldCondition(key=c.key, range=models.Range(gte=c.gte, lte=c.lte))
        if isinstance(c, HasVector):
            return models.HasVectorCondition(has_vector=c.name)
        raise TypeError(f"unsupported filter condition {c!r}")

    return models.Filter(
        must=[condition(c) for c in spec.must] or None,
        must_not=[condition(c) for c in spec.must_not] or None,
    )


def _scored(points) -> list[ScoredPoint]:
    return [ScoredPoint(id=str(p.id), score=float(p.score), payload=p.payload or {}) for p in points]


def _fusion(spec) -> models.Query:
    if spec.kind == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    weights = list(spec.weights) if spec.weights else None
    return models.RrfQuery(rrf=models.Rrf(k=spec.k, weights=weights))


def _dense_stage(query: HybridQuery, flt: models.Filter | None) -> models.Prefetch:
    """The dense retriever: nearest chunks, or with a length prior, the `length_pool` nearest
    rescored by Qdrant's formula query (similarity - prior * ln(doc_chunks))."""
    n = query.prefetch_limit
    nearest = models.Prefetch(query=list(query.dense), using=DENSE_VECTOR, limit=n, filter=flt)
    if query.length_prior <= 0:
        return nearest
    pool = nearest.model_copy(update={"limit": max(query.length_pool, n)})
    penalty = models.MultExpression(mult=[-query.length_prior, models.LnExpression(ln=DOC_CHUNKS_KEY)])
    formula = models.FormulaQuery(formula=models.SumExpression(sum=["$score", penalty]), defaults={DOC_CHUNKS_KEY: 1})
    return models.Prefetch(prefetch=[pool], query=formula, limit=n, filter=flt)


class ServerStore:
    def __init__(
        self,
        client: QdrantClient,
        shards: int = 1,
        replication_factor: int = 1,
        on_disk: bool = False,
    ) -> None:
        self.client = client
        self.shards = shards
        self.replication_factor = replication_factor
        self.on_disk = on_disk
        self._known: set[str] = set()

    @classmethod
    def connect(cls, url: str, api_key: str | None = None, **kwargs) -> "ServerStore":
        try:
            client = QdrantClient(url=url, api_key=api_key, timeout=30)
            client.get_collections()
        except Exception as exc:
            raise StoreError(
                f"cannot reach the Qdrant server at {url} ({exc}). Start it "
                "(`docker compose up -d qdrant`) or unset QDRANT_URL to use the embedded index."
            ) from exc
        return cls(client, **kwargs)

    @contextmanager
    def _answering(self, what: str) -> Iterator[None]:
        """A server that stops answering mid-request (connection dropped, timed out, a 5xx) is a
        StoreError naming what was asked: the API answers 503, the process stays up."""
        try:
            yield
        except StoreError:
            raise
        except (ResponseHandlingException, httpx.TransportError) as exc:
            raise StoreError(f"the Qdrant server stopped answering during {what} ({type(exc).__name__}); try again") from exc
        except UnexpectedResponse as exc:
            if exc.status_code is not None and exc.status_code < 500:
                raise
            raise StoreError(f"the Qdrant server failed during {what} (HTTP {exc.status_code}); try again") from exc

    @property
    def concurrent_reads(self) -> bool:
        """A server answers concurrent requests; qdrant-client's local mode (tests, evals) is
        plain Python over shared dicts, so its callers take turns."""
        return type(self.client._client).__name__ != "QdrantLocal"

    # --- collections -----------------------------------------------------------------
    # Names are passed to the server as given: the server resolves aliases itself, so an
    # alias switch is seen by the next request.
    def collection_exists(self, collection: str) -> bool:
        return self.client.collection_exists(collection) or collection in self.aliases()

    def _require(self, collection: str) -> str:
        if collection not in self._known:
            if not self.collection_exists(collection):
                raise CollectionMissingError(
                    f"collection '{collection}' does not exist on the Qdrant server: "
                    "run `cairn ingest FOLDER` first"
                )
            self._known.add(collection)
        return collection

    def create_chunk_collection(self, collection: str, dense_size: int) -> None:
        self.client.create_collection(
            collection,
            vectors_config={
                DENSE_VECTOR: models.VectorParams(size=dense_size, distance=models.Distance.COSINE, on_disk=self.on_disk)
            },
            sparse_vectors_config={
                SPARSE_VECTOR: models.SparseVectorParams(
                    modifier=models.Modifier.IDF, index=models.SparseIndexParams(on_disk=self.on_disk)
                )
            },
            shard_number=self.shards,
            replication_factor=self.replication_factor,
            on_disk_payload=self.on_disk,
        )
        for field in KEYWORD_INDEXES:
            self.client.create_payload_index(collection, field, models.PayloadSchemaType.KEYWORD)
        for field in FLOAT_INDEXES:
            self.client.create_payload_index(collection, field, models.PayloadSchemaType.FLOAT)

    def dense_size(self, collection: str) -> int:
        return self.vector_sizes(collection)[DENSE_VECTOR]

    def vector_sizes(self, collection: str) -> dict[str, int]:
        vectors = self.client.get_collection(self._require(collection)).config.params.vectors
        return {name: int(params.size) for name, params in (vectors or {}).items()}

    def add_vector(self, collection: str, name: str, size: int) -> None:
        """Needs a Qdrant server 1.18 or newer (named vectors added to a live collection)."""
        config = models.DenseVectorConfig(size=size, distance=models.Distance.COSINE)
        try:
            self.client.create_vector_name(self._require(collection), name, models.DenseVectorNameConfig(dense=config), wait=True)
        except UnexpectedResponse as exc:
            raise StoreError(
                f"the Qdrant server refused to add the reranking vector '{name}' to '{collection}' (HTTP "
                f"{exc.status_code}): it needs Qdrant 1.18 or newer. Upgrade the server, or set "
                "CAIRN_RERANK_STORED_VECTORS=false to encode reranking candidates per question instead"
            ) from exc

    def delete_vector(self, collection: str, name: str) -> None:
        self.client.delete_vector_name(self._require(collection), name, wait=True)

    def create_record_collection(self, collection: str) -> None:
        self.client.create_collection(
            collection,
            vectors_config={},
            shard_number=self.shards,
            replication_factor=self.replication_factor,
        )
        self.client.create_payload_index(collection, "source", models.PayloadSchemaType.KEYWORD)

    def delete_collection(self, collection: str) -> None:
        self._known.discard(collection)
        self.client.delete_collection(self.aliases().get(collection, collection))

    def list_collections(self) -> list[str]:
        return sorted(c.name for c in self.client.get_collections().collections)

    # --- writes (wait=True: a returned call is durably applied) -----------------------
    def upsert_chunks(self, collection: str, points: Sequence[ChunkPoint]) -> None:
        if not points:
            return
        self.client.upsert(
            self._require(collection),
            points=[
                models.PointStruct(
                    id=p.id,
                    vector={
                        DENSE_VECTOR: list(map(float, p.dense)),
                        SPARSE_VECTOR: models.SparseVector(indices=list(p.sparse.indices), values=list(p.sparse.values)),
                    }
                    | {name: list(map(float, v)) for name, v in p.named.items()},
                    payload=p.payload,
                )
                for p in points
            ],
            wait=True,
        )

    def upsert_records(self, collection: str, records: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if records:
            self.client.upsert(
                self._require(collection),
                points=[models.PointStruct(id=rid, vector={}, payload=payload) for rid, payload in records],
                wait=True,
            )

    def delete(self, collection: str, filter: Filter) -> None:
        self.client.delete(self._require(collection), points_selector=models.FilterSelector(filter=_to_filter(filter)), wait=True)

    def delete_ids(self, collection: str, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self._require(collection), points_selector=models.PointIdsList(points=list(ids)), wait=True)

    def set_payload(self, collection: str, payload: dict[str, Any], filter: Filter) -> None:
        self.client.set_payload(self._require(collection), payload=payload, points=_to_filter(filter), wait=True)

    def set_vectors(self, collection: str, name: str, vectors: Mapping[str, Sequence[float]]) -> int:
        name_ = self._require(collection)
        ids = list(vectors)
        if not ids:
            return 0
        # a point deleted since it was read would fail the whole batch: write those still there
        present = [str(r.id) for r in self.client.retrieve(name_, ids=ids, with_payload=False, with_vectors=False)]
        if present:
            self.client.update_vectors(
                name_,
                points=[models.PointVectors(id=pid, vector={name: list(map(float, vectors[pid]))}) for pid in present],
                wait=True,
            )
        return len(present)

    def flush(self) -> None:
        """Writes are made with wait=True, so nothing is pending."""

    def optimize(self, collection: str) -> None:
        """The server builds its indexes in the background."""

    # --- reads -----------------------------------------------------------------------
    def scroll_chunks(self, collection: str) -> Iterator[ChunkPoint]:
        """Every chunk with the vectors ingestion and the fill stored (benchmarks copy an index with it)."""
        name = self._require(collection)
        offset = None
        while True:
            records, offset = self.client.scroll(
                name, limit=_SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=True
            )
            for r in records:
                vectors = r.vector or {}
                bm25 = vectors[SPARSE_VECTOR]
                sparse = SparseVec(indices=list(bm25.indices), values=[float(v) for v in bm25.values])
                named = {k: list(v) for k, v in vectors.items() if k not in (DENSE_VECTOR, SPARSE_VECTOR)}
                yield ChunkPoint(str(r.id), list(vectors[DENSE_VECTOR]), sparse, r.payload or {}, named)
            if offset is None:
                return

    def scroll(
        self,
        collection: str,
        filter: Filter | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[ScoredPoint]:
        name = self._require(collection)
        offset, left = None, limit
        while left is None or left > 0:
            records, offset = self.client.scroll(
                name,
                scroll_filter=_to_filter(filter),
                limit=_SCROLL_PAGE if left is None else min(left, _SCROLL_PAGE),
                offset=offset,
                with_payload=list(fields) if fields else True,
                with_vectors=False,
            )
            for r in records:
                yield ScoredPoint(id=str(r.id), score=0.0, payload=r.payload or {})
            left = None if left is None else left - len(records)
            if offset is None:
                return

    def retrieve(self, collection: str, ids: Sequence[str]) -> list[ScoredPoint]:
        if not ids:
            return []
        with self._answering("a read of stored points"):
            records = self.client.retrieve(self._require(collection), ids=list(ids), with_payload=True)
        return [ScoredPoint(id=str(r.id), score=0.0, payload=r.payload or {}) for r in records]

    def count(self, collection: str, filter: Filter | None = None) -> int:
        with self._answering("a count"):
            return self.client.count(self._require(collection), count_filter=_to_filter(filter), exact=True).count

    def hybrid_query(self, collection: str, query: HybridQuery) -> HybridResult:
        with self._answering("a search"):
            name = self._require(collection)
        flt = _to_filter(query.filter)
        stages: list[tuple[str, models.Prefetch]] = []
        if query.dense is not None:
            stages.append(("dense", _dense_stage(query, flt)))
        if query.sparse is not None:
            sparse = models.SparseVector(indices=list(query.sparse.indices), values=list(query.sparse.values))
            idf = models.SearchParams(idf=models.IdfCorpusParams(corpus=_to_filter(query.idf_corpus))) if query.idf_corpus else None
            stages.append(("sparse", models.Prefetch(query=sparse, using=SPARSE_VECTOR, limit=query.prefetch_limit, filter=flt, params=idf)))
        if not stages:
            raise ValueError("a hybrid query needs a dense or a sparse vector")
        requests = [
            models.QueryRequest(
                prefetch=p.prefetch, query=p.query, using=p.using, limit=p.limit, filter=flt, params=p.params, with_payload=True
            )
            for _, p in stages
        ]
        if len(stages) == 2:
            requests.append(
                models.QueryRequest(
                    prefetch=[p for _, p in stages], query=_fusion(query.fusion), limit=query.limit, filter=flt, with_payload=True
                )
            )
        with self._answering("a search"):
            responses = self.client.query_batch_points(name, requests=requests)
        by_stage = {stage: _scored(responses[i].points) for i, (stage, _) in enumerate(stages)}
        fused = _scored(responses[-1].points) if len(stages) == 2 else next(iter(by_stage.values()))[: query.limit]
        return HybridResult(fused=fused, dense=by_stage.get("dense", []), sparse=by_stage.get("sparse", []))

    def rescore(self, collection: str, name: str, vector: Sequence[float], ids: Sequence[str]) -> dict[str, float]:
        if not ids:
            return {}
        with self._answering("a rescoring"):
            response = self.client.query_points(
                self._require(collection),
                query=list(map(float, vector)),
                using=name,
                query_filter=models.Filter(must=[models.HasIdCondition(has_id=list(ids))]),
                limit=len(ids),
                with_payload=False,
            )
        return {str(p.id): float(p.score) for p in response.points}

    # --- aliases ---------------------------------------------------------------------
    def aliases(self) -> dict[str, str]:
        return {a.alias_name: a.collection_name for a in self.client.get_aliases().aliases}

    def set_alias(self, alias: str, collection: str) -> None:
        # delete + create in one request: the server switches the alias atomically
        operations: list[Any] = []
        if alias in self.aliases():
            operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        operations.append(
            models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias))
        )
        self.client.update_collection_aliases(change_aliases_operations=operations)

    def close(self) -> None:
        self.client.close()

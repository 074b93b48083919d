"""Hybrid search: encode the query twice, let Qdrant fuse dense and BM25 candidates in one call."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from retrieval.encoders import DenseEncoder, SparseEncoder
from retrieval.index_schema import Filter, FusionSpec, HybridQuery, HybridResult, ScoredPoint
from retrieval.search_schemas import Hit, StageScore, StageScores
from retrieval.settings import FusionKind, Settings
from retrieval.store.base import IndexStore
from retrieval.timing import elapsed_ms

SearchMode = Literal["hybrid", "dense", "sparse"]


@dataclass
class SearchOutcome:
    hits: list[Hit]  # in fused order (the single retriever's order outside hybrid mode)
    timings_ms: dict[str, float] = field(default_factory=dict)


def fusion_spec(kind: FusionKind, settings: Settings) -> FusionSpec:
    """Weighted RRF with the configured k and weights, or DBSF (which takes neither)."""
    if kind == "dbsf":
        return FusionSpec(kind="dbsf")
    return FusionSpec(kind="rrf", k=settings.rrf_k, weights=(settings.rrf_dense_weight, settings.rrf_sparse_weight))



def hit_from_point(point: ScoredPoint, scores: StageScores) -> Hit:
    """Validated from the stored payload: a field missing from the index fails loudly."""
    return Hit.model_validate(point.payload | {"id": point.id, "scores": scores})


def hits_from_result(result: HybridResult, mode: SearchMode) -> list[Hit]:
    """Each fused point with its score and 1-based rank in every stage that returned it."""
    dense = {p.id: StageScore(score=p.score, rank=i) for i, p in enumerate(result.dense, 1)}
    sparse = {p.id: StageScore(score=p.score, rank=i) for i, p in enumerate(result.sparse, 1)}
    hits = []
    for rank, point in enumerate(result.fused, 1):
        scores = StageScores(
            dense=dense.get(point.id),
            sparse=sparse.get(point.id),
            # A single retriever has nothing to fuse: its order is the final one.
            fused=StageScore(score=point.score, rank=rank) if mode == "hybrid" else None,
        )
        hits.append(hit_from_point(point, scores))
    return hits


class HybridSearcher:
    def __init__(self, store: IndexStore, dense: DenseEncoder, sparse: SparseEncoder, settings: Settings) -> None:
        self.store = store
        self.dense = dense
        self.sparse = sparse
        self.settings = settings

    def search(
        self,
        query: str,
        limit: int,
        filter: Filter,
        mode: SearchMode = "hybrid",
        fusion: FusionKind | None = None,
        prefetch_limit: int | None = None,
        idf_corpus: Filter | None = None,
    ) -> SearchOutcome:
        """The ``limit`` best chunks matching ``filter``; ``filter`` must carry the access condition.

        ``idf_corpus``: the points BM25's IDF is counted over; a caller's search passes its access
        filter (None: the whole collection, for the operator's tools). With collection-wide IDF a
        public caller could count hidden chunks holding a term (a codename) from the BM25 score of
        a public chunk. Scaling each stage's scores within the caller's own results would not do:
        on a query of several terms the terms' relative IDF still moves BM25 ranks, and so the
        fused order (tests/test_security_api.py). Counting IDF over what the caller may see
        (Qdrant's IDF corpus) keeps every score and rank a function of visible documents only.
        """
        start = time.perf_counter()
        dense_vec = self.dense.encode_query(query) if mode in ("hybrid", "dense") else None
        sparse_vec = self.sparse.encode_query(query) if mode in ("hybrid", "sparse") else None
        encode_ms = elapsed_ms(start)

        # Each retriever must offer at least `limit` candidates, or a large top-k comes back short.
        prefetch = max(prefetch_limit or self.settings.prefetch_limit, limit)
        hybrid = HybridQuery(
            dense=dense_vec,
            sparse=sparse_vec,
            prefetch_limit=prefetch,
            limit=limit,
            fusion=fusion_spec(fusion or self.settings.fusion, self.settings),
            filter=filter,
            length_prior=self.settings.doc_length_prior,
            length_pool=prefetch * self.settings.length_pool_factor,
            idf_corpus=idf_corpus,
        )
        start = time.perf_counter()
        result = self.store.hybrid_query(self.settings.collection, hybrid)
        search_ms = elapsed_ms(start)
        return SearchOutcome(hits=hits_from_result(result, mode), timings_ms={"encode": encode_ms, "search": search_ms})

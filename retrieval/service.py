"""The retrieval service: the one object the CLI, the HTTP API, the UI and the evals call.

Every read goes through the caller's `Identity`: its groups become a filter inside Qdrant on
every query, neighbour fetch, count and listing, so a chunk the caller may not see is never
loaded, ranked, counted or named.
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

from retrieval.access import Identity
from retrieval.compress import SentenceCompressor
from retrieval.context import (
    ContextAssembler,
    ContextLimits,
    TokenCounter,
    TokenizerCounter,
)
from retrieval.encoders import DenseEncoder, SparseEncoder
from retrieval.filters import access_filter, build_filter
from retrieval.index_schema import Filter, files_collection
from retrieval.index_stats import IndexStats, index_stats, rerank_vector_progress
from retrieval.rerank import Reranker, rerank_hits, stored_vector_model
from retrieval.search import HybridSearcher
from retrieval.search_schemas import (
    ContextResponse,
    DocumentInfo,
    HealthResponse,
    Hit,
    RerankInfo,
    SearchRequest,
    SearchResponse,
)
from retrieval.settings import Settings
from retrieval.store import IndexStore, StoreError
from retrieval.timing import elapsed_ms

_BACKENDS = {"EdgeStore": "embedded", "ServerStore": "server"}



@dataclass
class _Ranked:
    hits: list[Hit]
    rerank: RerankInfo
    filter: Filter
    timings_ms: dict[str, float]


class SearchService:
    def __init__(
        self,
        settings: Settings,
        store: IndexStore,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        reranker: Reranker,
        token_counter: TokenCounter | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dense = dense
        self.sparse = sparse
        self.reranker = reranker
        self.searcher = HybridSearcher(store, dense, sparse, settings)
        # The dense model's tokenizer until the answer layer passes its LLM's own counter.
        self.token_counter: TokenCounter = token_counter or TokenizerCounter(dense.tokenizer)
        # Reads run concurrently where the store allows it (a server, the embedded engine); a
        # store that does not (qdrant-client's local mode) is read one request at a time.
        self._lock = nullcontext() if store.concurrent_reads else threading.RLock()

    @property
    def read_lock(self):
        """Held around every read when the store serves one request at a time (a no-op otherwise):
        a writer in this process (the ingest jobs) takes it too."""
        return self._lock

    @property
    def backend(self) -> str:
        return _BACKENDS.get(type(self.store).__name__, type(self.store).__name__)

    # --- search ------------------------------------------------------------------------
    def _ranked(self, request: SearchRequest, identity: Identity) -> _Ranked:
        settings = self.settings
        top_k = request.top_k or settings.top_k
        wants_rerank = request.rerank and self.reranker.available
        # The reranker sees `rerank_depth` fused candidates even when fewer are returned.
        limit = max(top_k, settings.rerank_depth) if wants_rerank else top_k
        flt = build_filter(request.filters, identity.groups)
        outcome = self.searcher.search(
            request.query,
            limit,
            flt,
            mode=request.mode,
            fusion=request.fusion,
            prefetch_limit=request.prefetch_limit,
            # BM25 statistics over what the caller may see, not over the request's narrowing: a
            # chunk's score does not change with a file-type filter, and hides nothing either way.
            idf_corpus=access_filter(identity.groups),
        )
        start = time.perf_counter()
        if request.rerank:
            stored = self._stored_scores if settings.rerank_stored_vectors else None
            hits, info = rerank_hits(self.reranker, request.query, outcome.hits, settings.rerank_depth, top_k, stored)
        else:
            hits = outcome.hits[:top_k]
            info = RerankInfo(reranker=self.reranker.name, applied=False, note="reranking turned off for this request")
        timings = outcome.timings_ms | {"rerank": elapsed_ms(start) if info.applied else 0.0}
        return _Ranked(hits=hits, rerank=info, filter=flt, timings_ms=timings)

    def _stored_scores(self, name: str, vector: list[float], ids: list[str]) -> dict[str, float]:
        """The reranking model's stored vectors, as far as the background fill has reached
        (nothing before it created them: every candidate is then encoded at query time)."""
        if name not in self.store.vector_sizes(self.settings.collection):
            return {}
        return self.store.rescore(self.settings.collection, name, vector, ids)

    def search(self, request: SearchRequest, identity: Identity) -> SearchResponse:
        start = time.perf_counter()
        with self._lock:
            ranked = self._ranked(request, identity)
        timings = ranked.timings_ms | {"assemble": 0.0, "total": elapsed_ms(start)}
        return SearchResponse(query=request.query, hits=ranked.hits, rerank=ranked.rerank, timings_ms=timings)

    def context(
        self, request: SearchRequest, identity: Identity, token_counter: TokenCounter | None = None
    ) -> ContextResponse:
        """Search, then assemble the numbered blocks an answer cites; ``token_counter`` is the answer model's."""
        start = time.perf_counter()
        limits = ContextLimits.from_settings(self.settings, request.token_budget)
        counter = token_counter or self.token_counter
        compress = self.settings.context_compression
        pool = replace(limits, token_budget=int(limits.token_budget * self.settings.context_compression_pool))
        with self._lock:
            ranked = self._ranked(request, identity)
            assemble_start = time.perf_counter()
            assembler = ContextAssembler(self.store, self.settings.collection, counter)
            # Neighbour chunks are fetched through the same filter: access groups included.
            assembly = assembler.assemble(ranked.hits, ranked.filter, pool if compress else limits)
        timings = ranked.timings_ms | {"assemble": elapsed_ms(assemble_start)}
        blocks = assembly.blocks
        if compress:
            compress_start = time.perf_counter()
            blocks = SentenceCompressor(self.dense, counter).compress(request.query, blocks, limits.token_budget)
            timings["compress"] = elapsed_ms(compress_start)
        timings["total"] = elapsed_ms(start)
        return ContextResponse(
            query=request.query,
            hits=ranked.hits,
            rerank=ranked.rerank,
            timings_ms=timings,
            blocks=blocks,
            dropped=assembly.dropped,
            token_budget=limits.token_budget,
            tokens_used=sum(b.tokens for b in blocks),
        )

    # --- the index, as the caller may see it -------------------------------------------
    def _files(self) -> str:
        return files_collection(self.settings.collection)

    def documents(self, identity: Identity) -> list[DocumentInfo]:
        with self._lock:
            if not self.store.collection_exists(self._files()):
                return []
            records = list(self.store.scroll(self._files(), access_filter(identity.groups)))
        # Validated from the stored record: a field missing from the index fails loudly.
        documents = [DocumentInfo.model_validate(r.payload) for r in records]
        return sorted(documents, key=lambda d: (d.source, d.path))

    def health(self, identity: Identity) -> HealthResponse:
        """Index reachable, models loaded, and the counts of what ``identity`` may see."""
        rerank = RerankInfo(
            reranker=self.reranker.name, applied=self.reranker.available, note=self.reranker.unavailable_reason
        )
        models = {"dense": self.dense.model_name, "sparse": "bm25 (qdrant)", "rerank": self.reranker.name}
        base: dict[str, Any] = {
            "backend": self.backend,
            "collection": self.settings.collection,
            "models": models,
            "reranker": rerank,
        }
        visible = access_filter(identity.groups)
        try:
            with self._lock:
                chunks = self.store.count(self.settings.collection, visible)
                documents = (
                    self.store.count(self._files(), visible) if self.store.collection_exists(self._files()) else 0
                )
                model = stored_vector_model(self.settings.rerank)
                filled = rerank_vector_progress(self.store, self.settings.collection, model, visible).filled if model else None
        except StoreError as exc:
            return HealthResponse(
                status="degraded", index_reachable=False, documents=0, chunks=0, problem=str(exc), **base
            )
        return HealthResponse(
            status="ok", index_reachable=True, documents=documents, chunks=chunks, rerank_vectors_filled=filled, **base
        )

    def stats(self) -> IndexStats:
        """Whole-index numbers for the operator (CLI, evals); never served to an API caller."""
        with self._lock:
            return index_stats(self.store, self.settings.collection, stored_vector_model(self.settings.rerank))

    def close(self) -> None:
        self.store.close()

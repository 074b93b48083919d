"""Typed requests and responses of the retrieval service: the boundary every interface shares
(Python API, CLI ``--json``, HTTP, the UI and the evals)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from retrieval.settings import FusionKind

MAX_FILTER_VALUES = 50


class SearchFilters(BaseModel):
    """What a caller may narrow a search to. Access groups are never part of a request:
    the service takes them from the caller's identity."""

    model_config = {"extra": "forbid"}

    # Bounded: each value becomes a condition Qdrant evaluates on every candidate.
    file_types: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None, max_length=MAX_FILTER_VALUES, description="e.g. ['pdf', 'md']"
    )
    path_prefix: str | None = Field(default=None, max_length=1000, description="folder relative to the ingested root")
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    sources: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=MAX_FILTER_VALUES)

    @model_validator(mode="after")
    def _dates_in_order(self) -> "SearchFilters":
        if self.modified_after and self.modified_before and self.modified_after > self.modified_before:
            raise ValueError("modified_after must not be later than modified_before")
        return self


class RetrievalOptions(BaseModel):
    """How to retrieve, the same for every interface: the search, context and answer requests
    are this model plus their own fields, and `cairn search`, `cairn ask`, the HTTP API and the
    UI all fill it (None: the service's setting)."""

    model_config = {"extra": "forbid"}

    top_k: int | None = Field(default=None, ge=1, le=1000)
    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    fusion: FusionKind | None = None
    rerank: bool = True
    prefetch_limit: int | None = Field(default=None, ge=1, le=1000)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    token_budget: int | None = Field(
        default=None, ge=1, le=100_000, description="context tokens for an answer (default: the setting)"
    )

    def retrieval_options(self) -> "RetrievalOptions":
        """Only the options, whatever request carries them."""
        return RetrievalOptions.model_validate(self.model_dump(include=set(RetrievalOptions.model_fields)))


class SearchRequest(RetrievalOptions):
    query: str = Field(min_length=1, max_length=2000)


class StageScore(BaseModel):
    score: float
    rank: int  # 1-based


class StageScores(BaseModel):
    dense: StageScore | None = None  # cosine similarity, minus the document length prior when it is on
    sparse: StageScore | None = None  # BM25
    fused: StageScore | None = None
    rerank: StageScore | None = None


class Hit(BaseModel):
    id: str
    doc_id: str
    source: str
    path: str
    title: str
    section: str
    page: int | None
    chunk_index: int
    file_type: str
    text: str
    scores: StageScores
    doc_chunks: int = Field(default=1, ge=1)  # chunks in the whole document: the length prior reads it


class ContextBlock(BaseModel):
    n: int  # the citation number, 1-based
    doc_id: str
    path: str
    title: str
    section: str
    page: int | None
    chunk_ids: list[str]  # the chunks joined into this block, in document order
    text: str
    tokens: int


class DroppedHit(BaseModel):
    id: str
    path: str
    reason: Literal["threshold", "duplicate", "budget", "per_document", "max_blocks"]


class RerankInfo(BaseModel):
    reranker: str  # "cross-encoder:<model>", "cohere:<model>" or "none"
    applied: bool
    note: str | None = None  # why it was not applied, when it was not


class SearchResponse(BaseModel):
    query: str
    hits: list[Hit]
    rerank: RerankInfo
    timings_ms: dict[str, float]


class ContextResponse(SearchResponse):
    blocks: list[ContextBlock]
    dropped: list[DroppedHit]
    token_budget: int
    tokens_used: int


# /context takes what /search takes; `token_budget` is one of the options.
ContextRequest = SearchRequest


class DocumentInfo(BaseModel):
    doc_id: str
    source: str
    path: str
    title: str
    file_type: str
    modified: str
    chunk_count: int
    indexed_at: str


class DocumentsResponse(BaseModel):
    documents: list[DocumentInfo]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    index_reachable: bool
    backend: str  # "embedded" or "server"
    collection: str
    models: dict[str, str]  # stage -> model name
    reranker: RerankInfo
    documents: int  # that the caller may see
    chunks: int  # that the caller may see
    # Of those chunks, the ones whose reranking vector is stored (the background fill's progress);
    # None without an embedding reranker. The others are encoded per question until filled.
    rerank_vectors_filled: int | None = None
    problem: str | None = None  # what is wrong when degraded

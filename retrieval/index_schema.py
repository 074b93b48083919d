"""The index schema both storage backends implement, and the ids that keep re-runs idempotent.

A collection ``NAME`` holds one point per chunk (a named dense vector and a named BM25
sparse vector, plus the reranking model's vector once the background fill has reached it: see
`rerank_vector_name`). Its companion ``NAME__files`` holds one record per indexed file: the marker
written only after that file's chunks are stored, which incremental ingestion trusts.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from retrieval.encoders import SparseVec

DENSE_VECTOR = "dense"
SPARSE_VECTOR = "bm25"
FILES_SUFFIX = "__files"
RERANK_VECTOR_PREFIX = "rerank-"

# Keyword payload indexes (the list, plus `dirs` for path-prefix filters and
# `source` so several ingested roots can share one collection).
KEYWORD_INDEXES = ("doc_id", "path", "groups", "file_type", "source", "dirs")
DOC_CHUNKS_KEY = "doc_chunks"  # the payload field the length prior reads (1 when absent)
SECTION_SEPARATOR = " > "  # joins a heading path in the `section` payload and the encoded header
FLOAT_INDEXES = ("modified_ts",)

_NAMESPACE = uuid.UUID("6f1c2a52-93c5-4bd4-9f59-2f3c7a0c8e11")


def chunk_header(title: str, section: str) -> str:
    """The header encoded above every chunk's body: the title, then the section path."""
    return SECTION_SEPARATOR.join([title] + ([section] if section and section != title else []))


def passage_text(title: str, section: str, text: str) -> str:
    """A chunk as its encoders read it: the header, then the body (rebuilt from the payload)."""
    return f"{chunk_header(title, section)}\n{text}"


def rerank_vector_name(model: str) -> str:
    """The named vector holding ``model``'s encoding of each chunk (the text ingestion embedded).

    Named after the model: vectors of another reranking model are never read as this one's, and
    a model change starts a fresh fill instead of mixing two vector spaces.
    """
    return RERANK_VECTOR_PREFIX + hashlib.sha256(model.encode()).hexdigest()[:12]


def files_collection(collection: str) -> str:
    return collection + FILES_SUFFIX


def make_doc_id(source: str, path: str) -> str:
    """Stable per source and relative path: an edited file keeps its id."""
    return str(uuid.uuid5(_NAMESPACE, f"{source}\x00{path}"))


def make_chunk_id(doc_id: str, content_hash: str, chunk_index: int) -> str:
    """Deterministic, so writing the same file twice overwrites instead of duplicating."""
    return str(uuid.uuid5(_NAMESPACE, f"{doc_id}\x00{content_hash}\x00{chunk_index}"))


def parent_dirs(path: str) -> list[str]:
    """``a/b/c.md`` -> ``["", "a", "a/b"]``: lets a keyword match act as a path-prefix filter."""
    parts = path.split("/")[:-1]
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


class ChunkPayload(BaseModel):
    doc_id: str
    source: str
    path: str  # relative to the ingested root, forward slashes
    title: str
    section: str  # heading path, " > " separated
    page: int | None
    chunk_index: int
    doc_chunks: int  # chunks in the whole file: search's document length prior reads it
    text: str
    content_hash: str  # of the whole file
    file_type: str
    modified: str  # ISO 8601, UTC
    modified_ts: float
    groups: list[str]
    dirs: list[str]


class FileRecord(BaseModel):
    """The marker that ``path`` is indexed at ``content_hash`` with ``chunk_count`` chunks."""

    doc_id: str
    source: str
    path: str
    title: str
    content_hash: str
    file_type: str
    modified: str
    groups: list[str]
    chunk_count: int
    fingerprint: str  # hash of the ingest settings and models that produced the chunks
    indexed_at: str


@dataclass(frozen=True)
class ChunkPoint:
    id: str
    dense: list[float]
    sparse: SparseVec
    payload: dict[str, Any]
    # further named dense vectors the point holds (the reranking model's, once filled)
    named: dict[str, list[float]] = field(default_factory=dict)


# --- filters, backend-neutral ------------------------------------------------------------


@dataclass(frozen=True)
class MatchAny:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    key: str
    gte: float | None = None
    lte: float | None = None


@dataclass(frozen=True)
class HasVector:
    """The point holds the named vector (the reranking model's, once filled)."""

    name: str


Condition = MatchAny | Range | HasVector


@dataclass(frozen=True)
class Filter:
    must: tuple[Condition, ...] = ()
    must_not: tuple[Condition, ...] = ()

    def and_(self, other: "Filter | None") -> "Filter":
        if other is None:
            return self
        return Filter(self.must + other.must, self.must_not + other.must_not)


# --- queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FusionSpec:
    kind: Literal["rrf", "dbsf"] = "rrf"
    k: int = 60
    weights: tuple[float, float] | None = None  # (dense, sparse); RRF only


@dataclass(frozen=True)
class HybridQuery:
    """Dense and sparse prefetches fused inside Qdrant, plus each prefetch alone.

    All three run as one batch, so every hit can show its per-stage score and rank.
    """

    dense: list[float] | None
    sparse: SparseVec | None
    prefetch_limit: int
    limit: int
    fusion: FusionSpec = field(default_factory=FusionSpec)
    filter: Filter | None = None
    # Dense scores become similarity - length_prior * ln(doc_chunks), computed by Qdrant over
    # the `length_pool` nearest chunks (see Settings.doc_length_prior). 0 = raw similarity.
    length_prior: float = 0.0
    length_pool: int = 0
    # The points BM25's IDF is counted over (None: the whole collection). Search passes the
    # caller's access filter, so sparse scores and ranks say nothing about hidden documents.
    idf_corpus: Filter | None = None


@dataclass(frozen=True)
class ScoredPoint:
    id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True)
class HybridResult:
    fused: list[ScoredPoint]
    dense: list[ScoredPoint]
    sparse: list[ScoredPoint]

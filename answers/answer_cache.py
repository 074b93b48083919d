"""The semantic answer cache: a final answer (text, citations, the blocks it was written from)
kept in a Qdrant collection of its own beside the index, found again by the question's
embedding (the dense model already loaded).

A cached answer is served only when all of these hold:
- the questions are the same question: cosine at or above the threshold (chosen on python-faq:
  evals/reports/python-faq/cache_threshold.md) and not the same words in another order
  (answers/question_match.py);
- the caller's access groups are exactly those of the original asker (a stricter policy than
  "may read every cited document": what retrieval found for one group set is never shown to
  another);
- the retrieval options and the answer provider chain and models are the same (one key);
- every document in the answer's context is still indexed with the same content hash, checked
  against the index's file records at hit time (chosen over an index generation number: an
  ingest that changes other documents leaves this answer valid, and there is no counter to
  keep in step across processes sharing a Qdrant server).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache

from answers.question_match import same_question
from answers.schemas import AnswerResponse, CacheInfo
from retrieval.encoders import SparseVec
from retrieval.index_schema import ChunkPoint, Filter, HybridQuery, MatchAny, files_collection
from retrieval.store import IndexStore

CACHE_SUFFIX = "__answers"
_NAMESPACE = uuid.UUID("0b7e4c1e-3f55-4d8e-9a43-6a7c5d2e9f10")
_CANDIDATES = 8


def cache_collection(collection: str) -> str:
    return collection + CACHE_SUFFIX


def request_key(options: dict, providers: list[str], models: dict[str, str]) -> str:
    """One key for what shapes an answer besides the question and the documents."""
    blob = json.dumps({"options": options, "providers": providers, "models": models}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def groups_key(groups: tuple[str, ...] | list[str]) -> str:
    return "\x1f".join(sorted(set(groups)))


class AnswerCache:
    def __init__(
        self,
        store: IndexStore,
        collection: str,
        encode_query: Callable[[str], list[float]],
        dimension: int,
        threshold: float,
        max_entries: int,
        ttl_s: float,
    ) -> None:
        self.store = store
        # The dense model search already loaded; a question missed by `lookup` is stored by `put`
        # with the same vector, encoded once.
        self.encode_query = lru_cache(maxsize=256)(encode_query)
        self.index = collection
        self.name = cache_collection(collection)
        self.dimension = dimension
        self.threshold = threshold
        self.max_entries = max_entries
        self.ttl_s = ttl_s

    def lookup(self, question: str, groups: tuple[str, ...], key: str) -> tuple[AnswerResponse, CacheInfo] | None:
        if not self.store.collection_exists(self.name):
            return None
        vector = self.encode_query(question)
        scope = Filter(must=(MatchAny("groups_key", (groups_key(groups),)), MatchAny("request_key", (key,))))
        query = HybridQuery(dense=vector, sparse=None, prefetch_limit=_CANDIDATES, limit=_CANDIDATES, filter=scope)
        now = time.time()
        for point in self.store.hybrid_query(self.name, query).fused:
            payload = point.payload
            if not same_question(payload["question"], question, point.score, self.threshold):
                continue
            if now - payload["created"] > self.ttl_s or not self._documents_unchanged(payload["documents"]):
                self.store.delete_ids(self.name, [point.id])  # stale for everyone: no one may be served it
                continue
            response = AnswerResponse.model_validate_json(payload["response"])
            info = CacheInfo(
                outcome="hit",
                similarity=round(point.score, 4),
                cached_at=datetime.fromtimestamp(payload["created"], timezone.utc).isoformat(timespec="seconds"),
                age_s=round(now - payload["created"], 1),
            )
            return response, info
        return None

    def _documents_unchanged(self, documents: dict[str, str]) -> bool:
        """Every document the answer was written from is still indexed at the same content hash."""
        if not documents:
            return True
        records = {p.id: p.payload.get("content_hash") for p in self.store.retrieve(files_collection(self.index), list(documents))}
        return all(records.get(doc_id) == digest for doc_id, digest in documents.items())

    def put(self, question: str, groups: tuple[str, ...], key: str, response: AnswerResponse) -> None:
        vector = self.encode_query(question)
        if not self.store.collection_exists(self.name):
            self.store.create_chunk_collection(self.name, self.dimension)
        doc_ids = sorted({block.doc_id for block in response.context})
        hashes = {p.id: p.payload.get("content_hash", "") for p in self.store.retrieve(files_collection(self.index), doc_ids)}
        payload = {
            "question": question,
            "groups_key": groups_key(groups),
            "request_key": key,
            "created": time.time(),
            "documents": hashes,
            "response": response.model_dump_json(),
        }
        point_id = str(uuid.uuid5(_NAMESPACE, f"{payload['groups_key']}\x00{key}\x00{question}"))
        self.store.upsert_chunks(self.name, [ChunkPoint(point_id, vector, SparseVec(indices=[], values=[]), payload)])
        self._bound()

    def _bound(self) -> None:
        """Oldest entries go first once the cache holds more than ``max_entries``."""
        extra = self.store.count(self.name) - self.max_entries
        if extra <= 0:
            return
        entries = sorted(self.store.scroll(self.name, fields=("created",)), key=lambda p: p.payload.get("created", 0))
        self.store.delete_ids(self.name, [p.id for p in entries[:extra]])

    def clear(self) -> int:
        """Drop every cached answer; the number dropped."""
        return clear_cache(self.store, self.name)


def clear_cache(store: IndexStore, name: str) -> int:
    """Drop the cache collection ``name``; the number of answers dropped."""
    if not store.collection_exists(name):
        return 0
    dropped = store.count(name)
    store.delete_collection(name)
    return dropped

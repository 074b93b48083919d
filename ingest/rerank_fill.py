"""The reranking model's vector of every chunk, written into the index after the fast first-stage
ingest, so reranking costs one encoding of the question instead of one per candidate.

Ingestion stores the first stage (MiniLM + BM25) and the index is searchable at once; the fill
then encodes the chunks that lack the second vector, a batch at a time, with the very model the
reranker loaded, and sets it on each point (`IndexStore.set_vectors`). Until a chunk is filled,
the reranker encodes it at query time, so results are the same either way, only slower.

Each batch is written in one call: a crash loses at most the batch in hand, and the next run
picks up the chunks still lacking the vector. A changed file gets new chunk ids (without the
vector) and a deleted one takes its vectors with it, so the fill is incremental by construction.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from pydantic import BaseModel

from retrieval.encoders import DenseEncoder
from retrieval.index_schema import RERANK_VECTOR_PREFIX, Filter, HasVector, passage_text, rerank_vector_name
from retrieval.index_stats import RerankVectorProgress, rerank_vector_progress
from retrieval.store import IndexStore

_FIELDS = ("title", "section", "text")


class FillProgress(Protocol):
    def filled(self, done: int, total: int) -> None: ...


class FillReport(BaseModel):
    model: str
    vector: str
    encoded: int  # chunks encoded and written by this run
    seconds: float
    complete: bool  # every chunk of the collection holds the vector
    stopped: bool = False  # asked to stop (a job arrived, the service is closing) before the end

    @property
    def chunks_per_s(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else 0.0


class RerankVectorFill:
    """Fills ``collection``'s points with ``encoder``'s vector of their text (named after its model)."""

    def __init__(self, store: IndexStore, collection: str, encoder: DenseEncoder, batch_size: int = 64) -> None:
        self.store = store
        self.collection = collection
        self.encoder = encoder
        self.model = encoder.model_name
        self.vector = rerank_vector_name(self.model)
        self.batch_size = batch_size
        self._missing = Filter(must_not=(HasVector(self.vector),))

    def prepare(self) -> None:
        """Create the model's named vector if the collection lacks it, and drop the vectors of
        reranking models no longer configured (they are never read again)."""
        sizes = self.store.vector_sizes(self.collection)
        for name in sizes:
            if name.startswith(RERANK_VECTOR_PREFIX) and name != self.vector:
                self.store.delete_vector(self.collection, name)
        if sizes.get(self.vector) not in (None, self.encoder.dimension):
            self.store.delete_vector(self.collection, self.vector)
            sizes.pop(self.vector)
        if self.vector not in sizes:
            self.store.add_vector(self.collection, self.vector, self.encoder.dimension)

    def progress(self) -> RerankVectorProgress:
        return rerank_vector_progress(self.store, self.collection, self.model)

    def pending(self) -> int:
        """Chunks still lacking the vector (``prepare`` first)."""
        return self.store.count(self.collection, self._missing)

    def step(self) -> int:
        """Encode and write one batch of chunks lacking the vector; 0 when none is left."""
        points = list(self.store.scroll(self.collection, self._missing, fields=_FIELDS, limit=self.batch_size))
        if not points:
            return 0
        texts = [passage_text(p.payload["title"], p.payload["section"], p.payload["text"]) for p in points]
        vectors = self.encoder.encode_documents(texts)
        written = self.store.set_vectors(self.collection, self.vector, {p.id: v for p, v in zip(points, vectors)})
        self.store.flush()
        # every point read was gone by the time of writing: go on, the next read skips them
        return written or len(points)

    def run(self, progress: FillProgress | None = None, stop: threading.Event | None = None) -> FillReport:
        """Until every chunk holds the vector, or ``stop`` is set (checked between batches)."""
        started = time.perf_counter()
        self.prepare()
        total = self.store.count(self.collection)
        left = self.pending()
        encoded, stopped = 0, False
        if progress:
            progress.filled(total - left, total)
        while left > 0:
            if stop is not None and stop.is_set():
                stopped = True
                break
            written = self.step()
            still = self.pending()
            encoded += written
            if written == 0 or still >= left:  # nothing moved: stop rather than spin
                left = still
                break
            left = still
            if progress:
                progress.filled(total - left, total)
        return FillReport(
            model=self.model,
            vector=self.vector,
            encoded=encoded,
            seconds=time.perf_counter() - started,
            complete=self.pending() == 0,
            stopped=stopped,
        )

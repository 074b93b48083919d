"""Searches run concurrently where the store allows it, and concurrency changes no result: the
same hits and scores as one at a time, on both backends, access groups included."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from fixtures_retrieval import HR, PUBLIC

from retrieval.search_schemas import SearchRequest

QUERIES = [
    "How many vacation days can be carried over?",
    "What is the daily meal allowance abroad?",
    "How did revenue and costs develop?",
    "salary bands",
    "onboarding laptop",
    "incident escalation",
]


def ranking(response) -> list[tuple[float, str]]:
    # Equal fused scores may come back in either order; the set of (score, hit) pairs may not change.
    return sorted((round(h.scores.fused.score, 4), h.id) for h in response.hits)


def test_concurrent_searches_return_what_sequential_ones_do(service):
    if service.store.concurrent_reads:
        assert type(service._lock).__name__ == "nullcontext"  # no service-wide lock on such a store
    expected = {
        (q, who.user): ranking(service.search(SearchRequest(query=q, top_k=8), who)) for q in QUERIES for who in (PUBLIC, HR)
    }
    jobs = [(q, who) for q in QUERIES for who in (PUBLIC, HR)] * 6
    random.Random(7).shuffle(jobs)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda job: ranking(service.search(SearchRequest(query=job[0], top_k=8), job[1])), jobs))
    for (q, who), got in zip(jobs, results):
        assert got == expected[(q, who.user)], (q, who.user)


def test_chunks_come_back_with_the_vectors_ingestion_stored(indexed, encoders):
    """The store's public `scroll_chunks` (benchmarks copy an index with it), on both backends."""
    settings, store = indexed
    chunks = list(store.scroll_chunks(settings.collection))
    assert len(chunks) == store.count(settings.collection)
    dense, _ = encoders
    assert all(len(c.dense) == dense.dimension and c.sparse.indices and c.payload["text"] for c in chunks)

"""The search latency benchmark's parts on a tiny scale: replication with distinct ids, and
per-stage percentiles measured through the real service."""

from __future__ import annotations

from fixtures_retrieval import COMPANY_FILES, retrieval_settings

from evals.bench_search import (
    STAGES,
    SearchBench,
    SearchBenchRow,
    _SourceChunk,
    build_replica,
    markdown,
    measure,
    read_source,
)
from retrieval.index_schema import Filter, HasVector
from retrieval.rerank import NoReranker
from retrieval.service import SearchService
from retrieval.store.edge import EdgeStore


def test_replicated_index_is_searchable_and_measured(encoders, tmp_path):
    dense, sparse = encoders
    texts = [p.strip() for text in COMPANY_FILES.values() for p in text.split("\n\n") if len(p.strip()) > 40][:12]
    vectors = dense.encode_documents(texts)
    source = [
        _SourceChunk(
            f"00000000-0000-4000-8000-{i:012d}",
            vectors[i],
            sparse.encode_documents([t])[0],
            {  # a chunk's whole payload, as ingestion writes it (search validates every field)
                "text": t, "groups": ["public"], "doc_id": f"d{i}", "path": f"p{i}.md", "chunk_index": 0,
                "source": "bench", "title": f"P{i}", "section": "", "page": None, "file_type": "md", "doc_chunks": 1,
            },
            # a second named vector on half the chunks, as a partly done fill leaves them
            {"rerank-test": vectors[i]} if i % 2 == 0 else {},
        )
        for i, t in enumerate(texts)
    ]
    store = EdgeStore(tmp_path / "bench")
    try:
        build_replica(store, source, 100)
        assert store.count("bench") == 100  # distinct ids: no copy overwrote another
        assert store.count("bench", Filter(must=(HasVector("rerank-test"),))) == 50  # copied with its chunk
        settings = retrieval_settings(tmp_path, collection="bench")
        service = SearchService(settings, store, dense, sparse, NoReranker())
        stages = measure(
            service, ["meal allowance abroad", "vacation carry over", "rollback a release"] * 4, rerank=False, top_k=5
        )
    finally:
        store.close()
    # the replica is read back with the vectors it was written with
    read = read_source(retrieval_settings(tmp_path / "bench", collection="bench"))
    assert len(read) == 100
    by_title = {c.payload["title"]: c for c in source}  # (two source paragraphs share a text)
    for chunk in read:
        original = by_title[chunk.payload["title"]]
        assert chunk.sparse.indices == original.sparse.indices
        # a copy: the same vector plus noise of σ=0.02 per dimension (norm ≈ 0.39 over 384
        # dimensions), so cosine ≈ 0.93, far above unrelated chunks
        assert float(chunk.dense @ original.dense) > 0.85
        assert set(chunk.named) == set(original.named)
        for name, vector in chunk.named.items():
            assert float(vector @ original.named[name]) > 0.85
    assert set(stages) == set(STAGES)
    for stage in ("encode", "search", "total"):
        assert 0 < stages[stage].p50_ms <= stages[stage].p95_ms
    assert stages["rerank"].p95_ms == 0
    bench = SearchBench(source="test", source_chunks=len(source), build_seconds={100: 0.1}, optimized=False)
    bench.rows.append(SearchBenchRow(chunks=100, reranker="none", rerank_depth=0, queries=12, stages=stages))
    table = markdown(bench)
    assert "| 100 | none | 0 | 12 |" in table

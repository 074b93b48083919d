"""Hybrid search on both backends: Qdrant's own fusion, per-stage scores and ranks, modes, filters."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest
from fixtures_retrieval import HR, PUBLIC, RESTRICTED_PATH

from retrieval.filters import build_filter, normalise_path_prefix
from retrieval.index_schema import DENSE_VECTOR, SPARSE_VECTOR
from retrieval.search import fusion_spec
from retrieval.search_schemas import SearchFilters, SearchRequest

QUERY = "how many vacation days can I carry over to next year"


def _engine_fusion(store, settings, dense_vec, sparse_vec, flt, fusion, prefetch, limit):
    """The same two prefetches fused by the engine itself, without our search code."""
    if type(store).__name__ == "EdgeStore":
        import qdrant_edge as qe

        from retrieval.store.edge import _to_filter

        f = _to_filter(flt)
        prefetches = [
            qe.Prefetch(limit=prefetch, query=qe.Query.Nearest(dense_vec, using=DENSE_VECTOR), filter=f),
            qe.Prefetch(
                limit=prefetch,
                query=qe.Query.Nearest(
                    qe.SparseVector(indices=sparse_vec.indices, values=sparse_vec.values), using=SPARSE_VECTOR
                ),
                filter=f,
                params=qe.SearchParams(idf=qe.IdfParams(corpus=f)),  # IDF over what the caller sees
            ),
        ]
        query = qe.Fusion.Dbsf() if fusion.kind == "dbsf" else qe.Fusion.Rrf(k=fusion.k, weights=list(fusion.weights))
        shard = store._shard(settings.collection)
        points = shard.query(
            qe.QueryRequest(limit=limit, prefetches=prefetches, query=query, filter=f, with_payload=False)
        )
        return [(str(p.id), p.score) for p in points]
    from qdrant_client import models

    from retrieval.store.server import _to_filter

    f = _to_filter(flt)
    prefetches = [
        models.Prefetch(query=dense_vec, using=DENSE_VECTOR, limit=prefetch, filter=f),
        models.Prefetch(
            query=models.SparseVector(indices=sparse_vec.indices, values=sparse_vec.values),
            using=SPARSE_VECTOR,
            limit=prefetch,
            filter=f,
            params=models.SearchParams(idf=models.IdfCorpusParams(corpus=f)),  # IDF over what the caller sees
        ),
    ]
    query = (
        models.FusionQuery(fusion=models.Fusion.DBSF)
        if fusion.kind == "dbsf"
        else models.RrfQuery(rrf=models.Rrf(k=fusion.k, weights=list(fusion.weights)))
    )
    response = store.client.query_points(
        settings.collection, prefetch=prefetches, query=query, query_filter=f, limit=limit
    )
    return [(str(p.id), p.score) for p in response.points]


def _without_length_prior(service):
    from retrieval.rerank import NoReranker
    from retrieval.service import SearchService

    raw = service.settings.model_copy(update={"doc_length_prior": 0.0})
    return SearchService(raw, service.store, service.dense, service.sparse, NoReranker())


@pytest.mark.parametrize("fusion", ["rrf", "dbsf"])
def test_fused_hits_are_exactly_what_qdrant_fuses(service, encoders, fusion):
    service = _without_length_prior(service)  # plain nearest-neighbour prefetches, as below
    settings, store = service.settings, service.store
    dense, sparse = encoders
    response = service.search(SearchRequest(query=QUERY, top_k=8, fusion=fusion, rerank=False), PUBLIC)
    expected = _engine_fusion(
        store,
        settings,
        dense.encode_query(QUERY),
        sparse.encode_query(QUERY),
        build_filter(SearchFilters(), PUBLIC.groups),
        fusion_spec(fusion, settings),
        max(settings.prefetch_limit, 8),
        8,
    )
    got = [(h.id, h.scores.fused.score) for h in response.hits]
    assert [i for i, _ in got] == [i for i, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], rel=1e-5)
    assert (
        response.hits[0].path == "handbook/vacation-policy.md"
        or response.hits[0].path == "archive/vacation-policy-2023.md"
    )


def test_length_prior_subtracts_log_chunks_of_the_document(service):
    """Dense score = cosine - prior * ln(chunks of the document), computed by Qdrant; checked
    against the raw similarities and chunk counts read independently from the index."""
    from retrieval.index_schema import Filter, MatchAny

    prior = service.settings.doc_length_prior
    assert prior > 0  # on by default
    request = SearchRequest(query=QUERY, top_k=12, mode="dense", rerank=False)
    adjusted = service.search(request, PUBLIC).hits
    wide = request.model_copy(update={"top_k": 40})
    raw = {h.id: h.scores.dense.score for h in _without_length_prior(service).search(wide, PUBLIC).hits}
    chunks_of = {
        h.doc_id: service.store.count(service.settings.collection, Filter(must=(MatchAny("doc_id", (h.doc_id,)),)))
        for h in adjusted
    }
    assert len(set(chunks_of.values())) > 1, "the test corpus needs documents of different lengths"
    for hit in adjusted:
        expected = raw[hit.id] - prior * math.log(chunks_of[hit.doc_id])
        assert hit.scores.dense.score == pytest.approx(expected, abs=1e-5), hit.path
    scores = [h.scores.dense.score for h in adjusted]
    assert scores == sorted(scores, reverse=True)


def test_weighted_rrf_scores_match_the_reported_stage_ranks(service):
    """Qdrant's weighted RRF: sum of 1 / (rank / weight + k - 1) over the stages that returned
    the point (a weight scales the rank). Checks our 1-based ranks against the engine's fusion."""
    settings = service.settings
    response = service.search(
        SearchRequest(query="rollback a release of the billing service", top_k=10, rerank=False), PUBLIC
    )
    assert response.hits
    for hit in response.hits:
        s = hit.scores
        expected = 0.0
        if s.dense:
            expected += 1 / (s.dense.rank / settings.rrf_dense_weight + settings.rrf_k - 1)
        if s.sparse:
            expected += 1 / (s.sparse.rank / settings.rrf_sparse_weight + settings.rrf_k - 1)
        assert s.fused.score == pytest.approx(expected, rel=1e-4), hit.path
    assert [h.scores.fused.rank for h in response.hits] == list(range(1, len(response.hits) + 1))


def test_every_hit_carries_its_payload_and_stage_scores(service):
    response = service.search(SearchRequest(query="What is the daily meal allowance abroad?", rerank=False), PUBLIC)
    top = response.hits[0]
    assert top.path == "handbook/expenses.md"
    assert top.section == "Travel and expenses > Meal allowance"
    assert "60 euros" in top.text
    assert top.doc_id and top.title and top.file_type == "md" and top.chunk_index >= 0
    assert top.scores.dense.rank >= 1 and 0 < top.scores.dense.score <= 1
    assert top.scores.sparse.rank >= 1 and top.scores.sparse.score > 0
    assert top.scores.rerank is None
    assert set(response.timings_ms) == {"encode", "search", "rerank", "assemble", "total"}
    assert response.rerank.applied is False and response.rerank.note


@pytest.mark.parametrize("mode,present,absent", [("dense", "dense", "sparse"), ("sparse", "sparse", "dense")])
def test_single_retriever_modes(service, mode, present, absent):
    response = service.search(SearchRequest(query="meal allowance receipts", mode=mode, rerank=False, top_k=5), PUBLIC)
    assert response.hits
    for rank, hit in enumerate(response.hits, 1):
        stage = getattr(hit.scores, present)
        assert stage.rank == rank  # the retriever's own order is the result order
        assert getattr(hit.scores, absent) is None and hit.scores.fused is None
    scores = [getattr(h.scores, present).score for h in response.hits]
    assert scores == sorted(scores, reverse=True)


def test_top_k_larger_than_prefetch_is_filled(service):
    response = service.search(SearchRequest(query="policy", top_k=18, prefetch_limit=3, rerank=False), PUBLIC)
    # 19 public chunks are indexed: every retriever must offer at least top_k candidates.
    assert len(response.hits) == 18
    assert len({h.id for h in response.hits}) == 18


def test_file_type_filter(service):
    response = service.search(
        SearchRequest(query="first day laptop badge", filters=SearchFilters(file_types=[".HTML"]), rerank=False), PUBLIC
    )
    assert response.hits and {h.file_type for h in response.hits} == {"html"}


@pytest.mark.parametrize("prefix", ["engineering", "/engineering/", "engineering\\"])
def test_path_prefix_filter(service, prefix):
    response = service.search(
        SearchRequest(query="vacation days", filters=SearchFilters(path_prefix=prefix), rerank=False, top_k=20), PUBLIC
    )
    assert response.hits and all(h.path.startswith("engineering/") for h in response.hits)


def test_path_prefix_matches_whole_folders_only(service):
    response = service.search(
        SearchRequest(query="vacation days", filters=SearchFilters(path_prefix="engineer"), rerank=False), PUBLIC
    )
    assert response.hits == []


def test_normalise_path_prefix():
    assert normalise_path_prefix(" /a//b/./c/ ") == "a/b/c"
    assert normalise_path_prefix("/") == ""


def test_modified_date_range(service):
    before_2024 = SearchFilters(modified_before=datetime(2024, 1, 1, tzinfo=timezone.utc))
    response = service.search(SearchRequest(query="revenue and vacation", filters=before_2024, rerank=False), PUBLIC)
    assert [h.path for h in response.hits] == ["reports/q3-summary.txt"]
    after_2024 = SearchFilters(modified_after=datetime(2024, 1, 1))  # no zone: read as UTC
    response = service.search(SearchRequest(query="revenue growth", filters=after_2024, rerank=False), PUBLIC)
    assert response.hits and "reports/q3-summary.txt" not in {h.path for h in response.hits}


def test_source_filter(service):
    response = service.search(
        SearchRequest(query="policy", filters=SearchFilters(sources=["finance"]), rerank=False), PUBLIC
    )
    assert {h.source for h in response.hits} == {"finance"}


def test_filters_combine_with_access(service):
    """A filter naming the restricted folder narrows to nothing for a caller outside the group."""
    hr_only = SearchFilters(path_prefix="hr")
    assert service.search(SearchRequest(query="salary", filters=hr_only, rerank=False), PUBLIC).hits == []
    hits = service.search(SearchRequest(query="salary", filters=hr_only, rerank=False), HR).hits
    assert hits and {h.path for h in hits} == {RESTRICTED_PATH}


def test_dates_out_of_order_are_rejected():
    with pytest.raises(ValueError, match="modified_after"):
        SearchFilters(modified_after=datetime(2025, 1, 1), modified_before=datetime(2024, 1, 1))


def test_a_query_of_stopwords_only_still_answers(service):
    response = service.search(SearchRequest(query="the of and", rerank=False), PUBLIC)
    assert response.hits  # dense still ranks; an empty BM25 query must not break the call

"""Reranking: the embedding reranker (the real mpnet), the local cross-encoder's guard against
untrained heads, Cohere Rerank through a fake HTTP server, the reranked head + fused tail, and
fallbacks that say why."""

from __future__ import annotations

import copy
import math

import pytest
from cachetools import LRUCache
from fixtures_retrieval import MPNET, PUBLIC, retrieval_settings

from ingest.chunking import Chunker
from ingest.parsing import parse_file
from retrieval.model_sources import resolve_model
from retrieval.rerank import (
    CohereReranker,
    CrossEncoderReranker,
    EmbeddingReranker,
    NoReranker,
    build_reranker,
    encoded_passage,
    rerank_hits,
)
from retrieval.search_schemas import SearchRequest
from retrieval.service import SearchService
from retrieval.settings import DEFAULT_EMBEDDING_MODEL

QUERY = "what is the meal allowance on business trips abroad"


@pytest.fixture(scope="module")
def untrained_cross_encoder():
    """MiniLM with a fresh classification head: right speed, meaningless scores (tests only)."""
    return CrossEncoderReranker(DEFAULT_EMBEDDING_MODEL, max_length=256, batch_size=16, allow_untrained_head=True)


def _service(service, reranker, **settings):
    merged = service.settings.model_copy(update=settings)
    return SearchService(merged, service.store, service.dense, service.sparse, reranker)


def test_no_model_configured_means_unavailable_and_says_so():
    reranker = CrossEncoderReranker(None)
    assert not reranker.available
    assert "CAIRN_RERANKER_MODEL" in reranker.unavailable_reason


def test_an_encoder_without_a_trained_head_is_refused():
    reranker = CrossEncoderReranker(DEFAULT_EMBEDDING_MODEL)
    assert not reranker.available
    assert "no trained sequence-classification head" in reranker.unavailable_reason
    assert resolve_model(DEFAULT_EMBEDDING_MODEL) != DEFAULT_EMBEDDING_MODEL  # the packaged copy was checked


def test_a_missing_model_folder_is_reported(tmp_path):
    reranker = CrossEncoderReranker(str(tmp_path / "no-such-model"))
    assert not reranker.available
    assert "no-such-model" in reranker.unavailable_reason


def test_build_reranker_auto(tmp_path):
    embedding = build_reranker(retrieval_settings(tmp_path, reranker="auto").rerank)
    assert isinstance(embedding, EmbeddingReranker) and embedding.name == f"embedding:{MPNET}"
    assert embedding.length_prior == retrieval_settings(tmp_path).doc_length_prior
    none = build_reranker(retrieval_settings(tmp_path, reranker="auto", reranker_embedding_model="").rerank)
    assert isinstance(none, NoReranker) and "COHERE_API_KEY" in none.unavailable_reason
    cohere = build_reranker(retrieval_settings(tmp_path, reranker="auto", cohere_api_key="k" * 20).rerank)
    assert isinstance(cohere, CohereReranker) and cohere.available  # a Cohere key beats the local model
    local = build_reranker(
        retrieval_settings(tmp_path, reranker="auto", reranker_model=str(tmp_path / "m"), cohere_api_key="k").rerank
    )
    assert isinstance(local, CrossEncoderReranker)  # a configured local model comes first
    assert isinstance(build_reranker(retrieval_settings(tmp_path, reranker="none", cohere_api_key="k").rerank), NoReranker)


def test_search_without_a_reranker_keeps_fused_order_and_says_why(service):
    settings = retrieval_settings(service.settings.data_dir, reranker="auto", reranker_embedding_model=None)
    response = _service(service, build_reranker(settings.rerank)).search(SearchRequest(query=QUERY, top_k=5), PUBLIC)
    assert not response.rerank.applied and "CAIRN_RERANKER_MODEL" in response.rerank.note
    assert [h.scores.fused.rank for h in response.hits] == [1, 2, 3, 4, 5]
    assert all(h.scores.rerank is None for h in response.hits)


def test_reranked_head_then_fused_tail(service, untrained_cross_encoder):
    svc = _service(service, untrained_cross_encoder, rerank_depth=4)
    fused = svc.search(SearchRequest(query=QUERY, top_k=9, rerank=False), PUBLIC).hits
    response = svc.search(SearchRequest(query=QUERY, top_k=9), PUBLIC)
    assert response.rerank.applied and response.rerank.reranker.startswith("cross-encoder:")
    head, tail = response.hits[:4], response.hits[4:]
    assert {h.id for h in head} == {h.id for h in fused[:4]}
    assert [h.scores.rerank.rank for h in head] == [1, 2, 3, 4]
    rerank_scores = [h.scores.rerank.score for h in head]
    assert rerank_scores == sorted(rerank_scores, reverse=True)
    assert [h.id for h in tail] == [h.id for h in fused[4:]]  # the rest in fused order
    assert all(h.scores.rerank is None for h in tail)
    by_id = {h.id: h for h in fused}
    for hit in response.hits:  # fused scores kept next to the rerank score
        assert hit.scores.fused == by_id[hit.id].scores.fused
    assert response.timings_ms["rerank"] > 0


def test_top_k_smaller_than_depth_reranks_the_whole_depth(service, untrained_cross_encoder):
    svc = _service(service, untrained_cross_encoder, rerank_depth=12)
    response = svc.search(SearchRequest(query=QUERY, top_k=3), PUBLIC)
    assert len(response.hits) == 3 and [h.scores.rerank.rank for h in response.hits] == [1, 2, 3]
    # candidates came from deeper than top_k: a hit may rise from a fused rank below 3
    assert max(h.scores.fused.rank for h in response.hits) <= 12


def test_request_can_turn_reranking_off(service, untrained_cross_encoder):
    response = _service(service, untrained_cross_encoder).search(SearchRequest(query=QUERY, rerank=False), PUBLIC)
    assert not response.rerank.applied and "turned off" in response.rerank.note
    assert response.timings_ms["rerank"] == 0


def test_cohere_rerank(service, fake_cohere_rerank):
    reranker = CohereReranker("test-key-000000000000", "rerank-v3.5", base_url=fake_cohere_rerank.url)
    svc = _service(service, reranker, rerank_depth=6)
    response = svc.search(SearchRequest(query=QUERY, top_k=8), PUBLIC)
    assert response.rerank.applied and response.rerank.reranker == "cohere:rerank-v3.5"
    [request] = fake_cohere_rerank.requests
    assert request["auth"] == "Bearer test-key-000000000000"
    assert request["body"]["model"] == "rerank-v3.5" and request["body"]["query"] == QUERY
    assert len(request["body"]["documents"]) == 6
    head = response.hits[:6]
    words = set(QUERY.split())
    expected = [len(words & set(h.text.lower().split())) / len(words) for h in head]
    assert [h.scores.rerank.score for h in head] == pytest.approx(expected)
    assert all(h.scores.fused is not None for h in response.hits)
    assert all(h.scores.rerank is None for h in response.hits[6:])


@pytest.mark.parametrize(
    "mode,reason", [("500", "HTTP 500"), ("malformed", "Cohere Rerank"), ("partial", "scored 1 of")]
)
def test_cohere_failures_fall_back_to_fused_order(service, fake_cohere_rerank, mode, reason):
    fake_cohere_rerank.mode = mode
    reranker = CohereReranker("test-key-000000000000", "rerank-v3.5", base_url=fake_cohere_rerank.url)
    svc = _service(service, reranker)
    fused = svc.search(SearchRequest(query=QUERY, top_k=5, rerank=False), PUBLIC).hits
    response = svc.search(SearchRequest(query=QUERY, top_k=5), PUBLIC)
    assert not response.rerank.applied
    assert "fused order" in response.rerank.note and reason in response.rerank.note
    assert [h.id for h in response.hits] == [h.id for h in fused]


def test_cohere_unreachable_falls_back(service):
    reranker = CohereReranker("test-key-000000000000", "rerank-v3.5", base_url="http://127.0.0.1:9", timeout_s=2)
    response = _service(service, reranker).search(SearchRequest(query=QUERY, top_k=3), PUBLIC)
    assert not response.rerank.applied and "fused order" in response.rerank.note
    assert len(response.hits) == 3


def test_rerank_hits_with_nothing_to_rerank(untrained_cross_encoder):
    hits, info = rerank_hits(untrained_cross_encoder, QUERY, [], depth=5, top_k=5)
    assert hits == [] and not info.applied


# --- the embedding reranker ---------------------------------------------------------------


def test_embedding_reranker_reorders_the_head(service, mpnet_reranker):
    svc = _service(service, mpnet_reranker, rerank_depth=6)
    fused = svc.search(SearchRequest(query=QUERY, top_k=8, rerank=False), PUBLIC).hits
    response = svc.search(SearchRequest(query=QUERY, top_k=8), PUBLIC)
    assert response.rerank.applied and response.rerank.reranker == f"embedding:{MPNET}"
    assert response.hits[0].path == "handbook/expenses.md"  # the only file with the meal allowance
    head = response.hits[:6]
    assert {h.id for h in head} == {h.id for h in fused[:6]}
    scores = [h.scores.rerank.score for h in head]
    assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert [h.id for h in response.hits[6:]] == [h.id for h in fused[6:8]]


def test_embedding_reranker_applies_the_length_prior(service, mpnet_reranker):
    hits = service.search(SearchRequest(query="how do I roll back a failed deployment", top_k=8), PUBLIC).hits
    long_doc = [h for h in hits if h.path == "engineering/deploy-guide.md"]
    assert long_doc and all(h.doc_chunks > 1 for h in long_doc)  # read from the payload
    plain, penalised = copy.copy(mpnet_reranker), copy.copy(mpnet_reranker)
    plain.length_prior, penalised.length_prior = 0.0, 0.5
    without = {h.id: h.scores.rerank.score for h in plain.rerank("roll back a deployment", hits)}
    with_prior = {h.id: h.scores.rerank.score for h in penalised.rerank("roll back a deployment", hits)}
    for hit in hits:
        assert with_prior[hit.id] == pytest.approx(without[hit.id] - 0.5 * math.log(hit.doc_chunks), abs=1e-5)


def test_embedding_reranker_scores_survive_a_small_cache(service, mpnet_reranker):
    hits = service.search(SearchRequest(query=QUERY, top_k=6, rerank=False), PUBLIC).hits
    small = copy.copy(mpnet_reranker)
    small._cache = LRUCache(maxsize=2)  # fewer entries than candidates
    expected = {h.id: h.scores.rerank.score for h in mpnet_reranker.rerank(QUERY, hits)}
    for _ in range(2):  # the second pass finds only two passages cached
        got = {h.id: h.scores.rerank.score for h in small.rerank(QUERY, hits)}
        assert got == pytest.approx(expected, abs=1e-5)
    assert len(small._cache) == 2


def test_embedding_reranker_encodes_the_chunk_as_ingestion_did(service, corpus_dir):
    hits = service.search(SearchRequest(query="carry over unused vacation days", top_k=5, rerank=False), PUBLIC).hits
    hit = next(h for h in hits if h.path == "handbook/vacation-policy.md")
    assert hit.section and hit.section != hit.title  # a header with both parts
    settings, dense = service.settings, service.dense
    chunker = Chunker(
        lambda text: dense.tokenizer.encode(text, add_special_tokens=False),
        settings.chunk_tokens,
        settings.chunk_overlap,
        dense.max_seq_length,
    )
    chunks = chunker.chunk(parse_file(str(corpus_dir["company"] / hit.path), "md"))
    assert encoded_passage(hit) == chunks[hit.chunk_index].embed_text


def test_embedding_reranker_that_cannot_load_says_why(service, tmp_path):
    reranker = EmbeddingReranker(str(tmp_path / "no-such-model"))
    assert not reranker.available
    assert "CAIRN_RERANKER_EMBEDDING_MODEL" in reranker.unavailable_reason
    assert "no-such-model" in reranker.unavailable_reason
    response = _service(service, reranker).search(SearchRequest(query=QUERY, top_k=4), PUBLIC)
    assert not response.rerank.applied and "fused order" in response.rerank.note
    assert [h.scores.fused.rank for h in response.hits] == [1, 2, 3, 4]

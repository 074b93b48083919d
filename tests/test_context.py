"""Selective context assembly over the real index: budget, duplicates, neighbours, caps, order."""

from __future__ import annotations

import re

import pytest
from fixtures_retrieval import HR, PUBLIC, RESTRICTED_PATH

from retrieval.context import (
    ContextAssembler,
    ContextLimits,
    FunctionCounter,
    TokenizerCounter,
    join_chunks,
)
from retrieval.filters import access_filter
from retrieval.index_schema import Filter, MatchAny
from retrieval.rerank import with_rerank_scores
from retrieval.search import hit_from_point
from retrieval.search_schemas import ContextRequest, SearchRequest, StageScores

QUERIES = [
    "how many vacation days can I carry over",
    "roll back a release of the billing service",
    "meal allowance and receipts for business trips",
    "global interpreter lock threads",
]


def chunk_hits(service, *wanted: tuple[str, int]):
    """Hits for (path, chunk_index) pairs, in the order given: a ranking chosen by the test."""
    paths = tuple({p for p, _ in wanted})
    points = {
        (p.payload["path"], p.payload["chunk_index"]): p
        for p in service.store.scroll(service.settings.collection, Filter(must=(MatchAny("path", paths),)))
    }
    return [hit_from_point(points[key], StageScores()) for key in wanted]


def assembler(service, counter=None):
    return ContextAssembler(service.store, service.settings.collection, counter or service.token_counter)


@pytest.mark.parametrize("budget", [15, 40, 90, 200, 400, 1500])
def test_budget_is_never_exceeded(service, budget):
    word_counter = FunctionCounter(lambda text: len(text.split()))
    for query in QUERIES:
        hits = service.search(SearchRequest(query=query, top_k=12, rerank=False), PUBLIC).hits
        for counter in (service.token_counter, word_counter):
            limits = ContextLimits(token_budget=budget, max_blocks=8, max_blocks_per_doc=3, neighbours=2)
            result = assembler(service, counter).assemble(hits, access_filter(PUBLIC.groups), limits)
            assert result.tokens_used <= budget
            assert result.tokens_used == sum(b.tokens for b in result.blocks)
            for block in result.blocks:
                assert block.tokens == counter.count(block.text)
            placed = {cid for b in result.blocks for cid in b.chunk_ids}
            # every hit is either in a block or reported as dropped, never both
            for hit in hits:
                assert (hit.id in placed) != (hit.id in {d.id for d in result.dropped}), hit.id


def test_budget_drops_are_reported(service):
    hits = service.search(SearchRequest(query=QUERIES[1], top_k=8, rerank=False), PUBLIC).hits
    result = assembler(service).assemble(
        hits, access_filter(PUBLIC.groups), ContextLimits(token_budget=60, neighbours=0)
    )
    assert result.blocks
    assert "budget" in {d.reason for d in result.dropped}


def test_near_duplicates_are_removed(service):
    hits = service.search(SearchRequest(query="carry over unused vacation days", top_k=6, rerank=False), PUBLIC).hits
    paths = [h.path for h in hits]
    assert "handbook/vacation-policy.md" in paths and "archive/vacation-policy-2023.md" in paths
    result = assembler(service).assemble(hits, access_filter(PUBLIC.groups), ContextLimits(neighbours=0))
    duplicates = [d for d in result.dropped if d.reason == "duplicate"]
    assert duplicates
    kept_texts = [b.text for b in result.blocks]
    for d in duplicates:
        dropped_text = next(h.text for h in hits if h.id == d.id)
        assert dropped_text not in kept_texts


def test_neighbours_are_joined_in_document_order_without_repeating_the_overlap(service):
    [hit] = chunk_hits(service, ("engineering/deploy-guide.md", 2))
    result = assembler(service).assemble(
        [hit], access_filter(PUBLIC.groups), ContextLimits(token_budget=1500, neighbours=1)
    )
    [block] = result.blocks
    indexes = _indexes(service, block.chunk_ids)
    assert indexes == [1, 2, 3]  # both neighbours, same section, in order
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", block.text) if len(s.strip()) > 20]
    assert len(sentences) == len(set(sentences)), "an overlapping sentence was repeated"
    assert hit.text.split(". ")[0] in block.text


def test_neighbours_stay_within_the_section(service):
    [hit] = chunk_hits(service, ("engineering/deploy-guide.md", 3))
    result = assembler(service).assemble([hit], access_filter(PUBLIC.groups), ContextLimits(neighbours=1))
    # chunk 4 starts "Feature flags": another topic, not a continuation
    assert _indexes(service, result.blocks[0].chunk_ids) == [2, 3]


def test_neighbours_only_when_they_fit(service):
    [hit] = chunk_hits(service, ("engineering/deploy-guide.md", 2))
    tight = service.token_counter.count(hit.text) + 5
    result = assembler(service).assemble(
        [hit], access_filter(PUBLIC.groups), ContextLimits(token_budget=tight, neighbours=1)
    )
    assert [b.chunk_ids for b in result.blocks] == [[hit.id]]


def test_neighbour_fetches_go_through_the_access_filter(service):
    """Even handed a restricted hit, the assembler joins no neighbour the filter hides."""
    [hit] = chunk_hits(service, (RESTRICTED_PATH, 0))
    visible = assembler(service).assemble([hit], access_filter(HR.groups), ContextLimits(neighbours=1))
    assert len(visible.blocks[0].chunk_ids) == 2  # the HR caller gets the next chunk
    hidden = assembler(service).assemble([hit], access_filter(PUBLIC.groups), ContextLimits(neighbours=1))
    assert hidden.blocks[0].chunk_ids == [hit.id]


def test_per_document_cap(service):
    hits = chunk_hits(
        service, ("handbook/vacation-policy.md", 0), ("handbook/vacation-policy.md", 2), ("handbook/expenses.md", 1)
    )
    limits = ContextLimits(max_blocks_per_doc=1, neighbours=0)
    result = assembler(service).assemble(hits, access_filter(PUBLIC.groups), limits)
    assert [b.path for b in result.blocks] == ["handbook/vacation-policy.md", "handbook/expenses.md"]
    assert [(d.id, d.reason) for d in result.dropped] == [(hits[1].id, "per_document")]


def test_max_blocks(service):
    hits = chunk_hits(
        service, ("handbook/expenses.md", 0), ("engineering/python-faq.txt", 0), ("handbook/onboarding.html", 1)
    )
    result = assembler(service).assemble(hits, access_filter(PUBLIC.groups), ContextLimits(max_blocks=2, neighbours=0))
    assert len(result.blocks) == 2
    assert [d.reason for d in result.dropped] == ["max_blocks"]


def test_blocks_grouped_by_document_in_reading_order(service):
    hits = chunk_hits(
        service, ("handbook/expenses.md", 2), ("handbook/vacation-policy.md", 0), ("handbook/expenses.md", 0)
    )
    result = assembler(service).assemble(hits, access_filter(PUBLIC.groups), ContextLimits(neighbours=0))
    layout = [(b.n, b.path, _indexes(service, b.chunk_ids)) for b in result.blocks]
    assert layout == [
        (1, "handbook/expenses.md", [0]),  # the best hit's document first, its chunks in order
        (2, "handbook/expenses.md", [2]),
        (3, "handbook/vacation-policy.md", [0]),
    ]
    assert result.blocks[1].section == "Travel and expenses > Receipts"


def test_adjacent_hits_make_one_block(service):
    hits = chunk_hits(service, ("engineering/deploy-guide.md", 1), ("engineering/deploy-guide.md", 0))
    result = assembler(service).assemble(hits, access_filter(PUBLIC.groups), ContextLimits(neighbours=0))
    [block] = result.blocks
    assert _indexes(service, block.chunk_ids) == [0, 1] and not result.dropped


def test_threshold_applies_to_rerank_scores(service):
    hits = chunk_hits(
        service, ("handbook/expenses.md", 0), ("engineering/python-faq.txt", 0), ("handbook/onboarding.html", 1)
    )
    reranked = with_rerank_scores(hits, [2.5, -1.0, 0.7])
    limits = ContextLimits(min_rerank_score=0.5, neighbours=0)
    result = assembler(service).assemble(reranked, access_filter(PUBLIC.groups), limits)
    assert [d.reason for d in result.dropped] == ["threshold"]
    assert result.dropped[0].id == hits[1].id
    # without rerank scores the threshold has nothing meaningful to compare: nothing dropped
    plain = assembler(service).assemble(hits, access_filter(PUBLIC.groups), limits)
    assert not plain.dropped and len(plain.blocks) == 3


def test_service_context_uses_the_request_budget(service):
    response = service.context(ContextRequest(query=QUERIES[0], token_budget=80, rerank=False), PUBLIC)
    assert 0 < response.tokens_used <= 80 and response.token_budget == 80
    assert [b.n for b in response.blocks] == list(range(1, len(response.blocks) + 1))
    assert response.timings_ms["assemble"] >= 0 and response.timings_ms["total"] >= response.timings_ms["search"]


def test_service_context_counts_with_the_answer_models_tokenizer(service):
    words = FunctionCounter(lambda text: len(text.split()))
    response = service.context(
        ContextRequest(query=QUERIES[2], token_budget=50, rerank=False), PUBLIC, token_counter=words
    )
    assert response.blocks and all(b.tokens == len(b.text.split()) for b in response.blocks)
    assert response.tokens_used <= 50


def test_join_chunks_keeps_the_overlap_once():
    a = "The pipeline builds the image. It runs the integration tests against staging."
    b = "It runs the integration tests against staging. Then it publishes the image."
    assert join_chunks([a, b]) == (
        "The pipeline builds the image. It runs the integration tests against staging. Then it publishes the image."
    )
    assert join_chunks(["First part.", "Second part."]) == "First part.\nSecond part."


def test_tokenizer_counter_counts_without_special_tokens(encoders):
    dense, _ = encoders
    counter = TokenizerCounter(dense.tokenizer)
    assert counter.count("hello world") == 2
    assert counter.count("") == 0


def _indexes(service, chunk_ids):
    found = {p.id: p.payload["chunk_index"] for p in service.store.scroll(service.settings.collection)}
    return [found[cid] for cid in chunk_ids]

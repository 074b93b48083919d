"""The semantic answer cache on both backends: a paraphrase is served, a near miss is not, a
caller with other groups never gets the answer (one citing a restricted document included), and
an edited document invalidates every answer written from it."""

from __future__ import annotations

import shutil

import pytest
from fixtures_ingest import Ingester

from answers.answer_cache import AnswerCache
from answers.question_match import reordered, same_question
from answers.schemas import AnswerResponse
from retrieval.search_schemas import ContextBlock

THRESHOLD = 0.916  # the default, chosen in evals/reports/python-faq/cache_threshold.md


def test_word_order_around_a_direction_is_another_question():
    assert reordered("How do I convert a number to a string?", "How do I convert a string to a number?")
    assert not reordered("How many vacation days carry over?", "How many days of vacation carry over?")
    assert not same_question("How do I convert a number to a string?", "How do I convert a string to a number?", 0.995, THRESHOLD)
    assert same_question("What is the daily meal allowance abroad?", "What is the meal allowance per day when abroad?", 0.98, THRESHOLD)


@pytest.fixture()
def cached(ingester, encoders, tmp_path):
    """An index of two files (one hr-only) and a cache beside it, on each backend."""
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "travel.md").write_text("# Travel\n\nThe daily meal allowance abroad is 60 euros per day.\n")
    (docs / "hr" / "bands.md").write_text("# Salary bands\n\nBand C pays between 70,000 and 85,000 euros.\n")
    (docs / "cairn-acl.yaml").write_text('rules:\n  - pattern: "hr/**"\n    groups: ["hr"]\n')
    assert not ingester.run(docs).failures
    dense, _ = encoders
    cache = AnswerCache(ingester.store, ingester.settings.collection, dense.dimension, THRESHOLD, 100, 3600)
    return ingester, docs, cache, dense


def _answer(ingester: Ingester, question: str, path: str) -> AnswerResponse:
    chunk = next(c for c in ingester.chunks() if c["path"] == path)
    block = ContextBlock(n=1, doc_id=chunk["doc_id"], path=path, title=chunk["title"], section="", page=None,
                         chunk_ids=[chunk["id"]], text=chunk["text"], tokens=20)
    return AnswerResponse(question=question, answer=f"{chunk['text']} [1]", provider="extractive", extractive=True,
                          fallbacks=[], rewritten_query=None, rewritten_by=None, citations=[], invalid_citations=0,
                          context=[block], timings_ms={})


def test_a_paraphrase_hits_and_a_near_miss_does_not(cached):
    ingester, _, cache, dense = cached
    question = "What is the daily meal allowance abroad?"
    cache.put(question, dense.encode_query(question), ("public",), "k", _answer(ingester, question, "travel.md"))
    paraphrase = "What is the meal allowance per day when abroad?"
    hit = cache.lookup(paraphrase, dense.encode_query(paraphrase), ("public",), "k")
    assert hit is not None and hit[1].outcome == "hit" and hit[1].similarity >= THRESHOLD
    assert "60 euros" in hit[0].answer
    near = "What is the daily meal allowance at home?"
    assert cache.lookup(near, dense.encode_query(near), ("public",), "k") is None
    assert cache.lookup(question, dense.encode_query(question), ("public",), "other-options") is None


def test_other_groups_never_get_the_answer(cached):
    ingester, _, cache, dense = cached
    question = "What does salary band C pay?"
    vector = dense.encode_query(question)
    cache.put(question, vector, ("hr", "public"), "k", _answer(ingester, question, "hr/bands.md"))
    assert cache.lookup(question, vector, ("public",), "k") is None  # the public caller
    assert cache.lookup(question, vector, ("finance", "public"), "k") is None  # other groups, same count
    assert cache.lookup(question, vector, ("public", "hr"), "k") is not None  # the asker's groups, in any order


def test_an_edited_document_invalidates_the_answer(cached):
    ingester, docs, cache, dense = cached
    question = "What is the daily meal allowance abroad?"
    vector = dense.encode_query(question)
    cache.put(question, vector, ("public",), "k", _answer(ingester, question, "travel.md"))
    (docs / "travel.md").write_text("# Travel\n\nThe daily meal allowance abroad is 75 euros per day.\n")
    assert not ingester.run(docs).failures
    assert cache.lookup(question, vector, ("public",), "k") is None
    assert ingester.store.count(cache.name) == 0  # a stale answer is dropped for everyone


def test_a_deleted_document_invalidates_too(cached):
    ingester, docs, cache, dense = cached
    question = "What is the daily meal allowance abroad?"
    vector = dense.encode_query(question)
    cache.put(question, vector, ("public",), "k", _answer(ingester, question, "travel.md"))
    (docs / "travel.md").unlink()
    assert not ingester.run(docs).failures
    assert cache.lookup(question, vector, ("public",), "k") is None
    shutil.rmtree(docs / "hr")

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
    cache = AnswerCache(ingester.store, ingester.settings.collection, dense.encode_query, dense.dimension, THRESHOLD, 100, 3600)
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
    cache.put(question, ("public",), "k", _answer(ingester, question, "travel.md"))
    paraphrase = "What is the meal allowance per day when abroad?"
    hit = cache.lookup(paraphrase, ("public",), "k")
    assert hit is not None and hit[1].outcome == "hit" and hit[1].similarity >= THRESHOLD
    assert "60 euros" in hit[0].answer
    near = "What is the daily meal allowance at home?"
    assert cache.lookup(near, ("public",), "k") is None
    assert cache.lookup(question, ("public",), "other-options") is None


def test_other_groups_never_get_the_answer(cached):
    ingester, _, cache, dense = cached
    question = "What does salary band C pay?"
    cache.put(question, ("hr", "public"), "k", _answer(ingester, question, "hr/bands.md"))
    assert cache.lookup(question, ("public",), "k") is None  # the public caller
    assert cache.lookup(question, ("finance", "public"), "k") is None  # other groups, same count
    assert cache.lookup(question, ("public", "hr"), "k") is not None  # the asker's groups, in any order


def test_an_edited_document_invalidates_the_answer(cached):
    ingester, docs, cache, dense = cached
    question = "What is the daily meal allowance abroad?"
    cache.put(question, ("public",), "k", _answer(ingester, question, "travel.md"))
    (docs / "travel.md").write_text("# Travel\n\nThe daily meal allowance abroad is 75 euros per day.\n")
    assert not ingester.run(docs).failures
    assert cache.lookup(question, ("public",), "k") is None
    assert ingester.store.count(cache.name) == 0  # a stale answer is dropped for everyone


def test_a_deleted_document_invalidates_too(cached):
    ingester, docs, cache, dense = cached
    question = "What is the daily meal allowance abroad?"
    cache.put(question, ("public",), "k", _answer(ingester, question, "travel.md"))
    (docs / "travel.md").unlink()
    assert not ingester.run(docs).failures
    assert cache.lookup(question, ("public",), "k") is None
    shutil.rmtree(docs / "hr")


# --- through the answer service: use, bypass, refresh ---------------------------------------


@pytest.fixture()
def cached_answers(answer_search, encoders, tmp_path):
    from fixtures_answer import answer_settings

    from answers.service import AnswerService

    dense, _ = encoders
    # a cache collection of its own per test: the index is shared by the module's tests
    cache = AnswerCache(answer_search.store, answer_search.settings.collection, dense.encode_query, dense.dimension,
                        THRESHOLD, 100, 3600)
    cache.name = f"{cache.name}_{tmp_path.name}"
    yield AnswerService(answer_search, answer_settings(llm_providers=["extractive"]).answers, cache)
    cache.clear()


def _final(answers, question: str, identity, **options):
    from answers.schemas import AnswerRequest, FinalEvent

    events = list(answers.stream(AnswerRequest(question=question, **options), identity))
    return [e for e in events if isinstance(e, FinalEvent)][0].response


def test_the_service_serves_a_paraphrase_from_the_cache_and_says_so(cached_answers):
    from fixtures_retrieval import HR, PUBLIC

    first = _final(cached_answers, "What is the daily meal allowance abroad?", PUBLIC)
    assert first.cache.outcome == "miss"
    again = _final(cached_answers, "What is the meal allowance per day when abroad?", PUBLIC)
    assert again.cache.outcome == "hit" and again.cache.similarity >= THRESHOLD and again.cache.cached_at
    assert again.answer == first.answer and again.question == "What is the meal allowance per day when abroad?"
    assert _final(cached_answers, "What is the daily meal allowance abroad?", HR).cache.outcome == "miss"  # other groups


def test_bypass_and_refresh(cached_answers):
    from fixtures_retrieval import PUBLIC

    question = "How many vacation days can be carried over?"
    assert _final(cached_answers, question, PUBLIC, cache="bypass").cache.outcome == "bypass"
    assert _final(cached_answers, question, PUBLIC).cache.outcome == "miss"  # bypass wrote nothing
    assert _final(cached_answers, question, PUBLIC).cache.outcome == "hit"
    assert _final(cached_answers, question, PUBLIC, cache="refresh").cache.outcome == "refresh"
    assert _final(cached_answers, question, PUBLIC).cache.outcome == "hit"


def test_a_follow_up_is_never_served_from_the_cache(cached_answers):
    from fixtures_retrieval import PUBLIC

    from answers.schemas import ChatTurn

    question = "How many of them can be carried over?"  # "them": read against the conversation
    _final(cached_answers, question, PUBLIC)
    history = [ChatTurn(role="user", content="Tell me about leave."), ChatTurn(role="assistant", content="Sure.")]
    assert _final(cached_answers, question, PUBLIC, history=history).cache is None


def test_a_question_that_stands_alone_mid_conversation_may_come_from_the_cache(cached_answers):
    from fixtures_retrieval import PUBLIC

    from answers.schemas import ChatTurn

    question = "How many vacation days can be carried over?"
    _final(cached_answers, question, PUBLIC)
    history = [ChatTurn(role="user", content="Tell me about leave."), ChatTurn(role="assistant", content="Sure.")]
    assert _final(cached_answers, question, PUBLIC, history=history).cache.outcome == "hit"

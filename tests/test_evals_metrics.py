"""The metrics on hand-made runs, with values worked out by hand."""

from __future__ import annotations

import math

import pytest

from evals.dataset import Judgement
from evals.metrics import (
    QueryOutcome,
    RetrievedText,
    chunk_holds_passage,
    context_recall,
    dedupe_to_files,
    document_metrics,
    latency_percentiles,
    passage_hit,
    word_tokens,
)
from evals.significance import compare_to_reference

QRELS = {"q1": {"a.md": 1}, "q2": {"b.md": 1}, "q3": {"c.md": 1, "d.md": 1}, "q4": {"e.md": 1}}


def test_hits_are_deduplicated_to_files_keeping_the_first_rank():
    assert dedupe_to_files(["x.md", "a.md", "x.md", "b.md", "a.md"]) == ["x.md", "a.md", "b.md"]


def test_document_metrics_match_hand_computed_values():
    rankings = {
        "q1": ["a.md", "z.md"],  # relevant at rank 1
        "q2": ["z.md", "b.md"],  # relevant at rank 2
        "q3": ["c.md", "z.md", "d.md"],  # two relevant, ranks 1 and 3
        "q4": ["z.md"] * 1 + [f"n{i}.md" for i in range(10)] + ["e.md"],  # rank 12: outside @10
    }
    scores = document_metrics(QRELS, rankings)
    # nDCG with binary gains: sum 1/log2(rank+1) over relevant, divided by the ideal.
    ndcg_q3 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert scores["ndcg@10"]["q1"] == pytest.approx(1.0)
    assert scores["ndcg@10"]["q2"] == pytest.approx(1 / math.log2(3))
    assert scores["ndcg@10"]["q3"] == pytest.approx(ndcg_q3)
    assert scores["ndcg@10"]["q4"] == 0.0
    assert scores["mrr@10"] == pytest.approx({"q1": 1.0, "q2": 0.5, "q3": 1.0, "q4": 0.0})
    assert scores["recall@10"] == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 1.0, "q4": 0.0})
    assert scores["recall@100"]["q4"] == 1.0


def test_a_query_without_results_scores_zero():
    scores = document_metrics(QRELS, {"q1": ["a.md"]})
    assert scores["ndcg@10"] == pytest.approx({"q1": 1.0, "q2": 0.0, "q3": 0.0, "q4": 0.0})


def test_tokens_ignore_case_punctuation_and_underscores():
    assert word_tokens("Python's __init__() — 3.11!") == ["python", "s", "init", "3", "11"]


PASSAGE = " ".join(f"word{i}" for i in range(40))  # 40 distinct words: 38 three-grams


def test_a_chunk_inside_a_long_passage_holds_it():
    assert chunk_holds_passage(" ".join(f"word{i}" for i in range(10, 25)), PASSAGE)


def test_a_short_passage_inside_a_long_chunk_is_held_despite_formatting():
    chunk = "Intro text here.\n\nThe ANSWER is:\n  `x = 1`\n and more, words follow after it."
    assert chunk_holds_passage(chunk, "the answer is x = 1 and more")


def test_a_chunk_sharing_only_scattered_words_does_not_hold_the_passage():
    shuffled = " ".join(f"word{i}" for i in range(0, 40, 3))  # same words, no shared 3-gram
    assert not chunk_holds_passage(shuffled, PASSAGE)


def test_passage_hit_needs_the_gold_document():
    gold = [Judgement("q1", "a.md", 1, PASSAGE)]
    assert passage_hit([RetrievedText("b.md", PASSAGE)], gold) == 0.0
    assert passage_hit([RetrievedText("b.md", "x"), RetrievedText("a.md", PASSAGE)], gold) == 1.0


def test_context_recall_is_the_share_of_passage_three_grams_in_gold_blocks():
    gold = [Judgement("q1", "a.md", 1, " ".join(f"w{i}" for i in range(20)))]  # 18 three-grams
    blocks = [RetrievedText("a.md", " ".join(f"w{i}" for i in range(10))), RetrievedText("b.md", "w10 w11 w12 w13")]
    assert context_recall(blocks, gold) == pytest.approx(8 / 18)  # w0..w9: 8 three-grams; b.md does not count
    assert context_recall([], gold) == 0.0


def test_context_recall_takes_the_best_of_several_gold_passages():
    gold = [Judgement("q", "a.md", 1, "one two three four"), Judgement("q", "b.md", 1, "five six seven eight")]
    assert context_recall([RetrievedText("b.md", "five six seven eight")], gold) == 1.0


def test_latency_percentiles_per_stage():
    outcomes = [QueryOutcome(f"q{i}", [], [], None, {"total": float(i), "encode": 2.0}) for i in range(1, 101)]
    latency = latency_percentiles(outcomes)
    assert latency["total"] == pytest.approx({"p50": 50.5, "p95": 95.05})
    assert latency["encode"] == {"p50": 2.0, "p95": 2.0}


def test_significance_marks_a_clearly_worse_run_and_not_an_identical_one():
    qrels = {f"q{i}": {f"d{i}.md": 1} for i in range(8)}
    reference = {q: [next(iter(d))] for q, d in qrels.items()}
    worse = {q: ["x.md", "y.md"][: 1 + i % 2] + [next(iter(d))] for i, (q, d) in enumerate(qrels.items())}
    result = compare_to_reference(qrels, {"ref": reference, "worse": worse, "same": dict(reference)}, "ref")
    assert set(result) == {"worse", "same"}
    assert result["worse"]["mrr@10"].significant and result["worse"]["mrr@10"].marker == "▼"
    assert result["worse"]["mrr@10"].delta == pytest.approx((1 / 2 + 1 / 3) / 2 - 1)
    assert result["same"]["ndcg@10"].p_value == 1.0 and result["same"]["ndcg@10"].marker == ""

"""The answer eval's metrics on a tiny hand-computed set, its fixed sample, and one real answer
through the answer service (extractive provider: fast and deterministic)."""

from __future__ import annotations

import pytest
from fixtures_answer import answer_settings
from fixtures_retrieval import PUBLIC

from answers.service import AnswerService
from evals.answer_eval import (
    AnswerRecord,
    AnswerSample,
    answer_one,
    is_refusal,
    load_runs,
    markdown,
    merge_run,
    new_run,
    rouge_l,
    sample_questions,
    summarise,
    token_f1,
    write_runs,
)
from evals.dataset import EvalSet, Judgement, Query


def test_token_f1_by_hand():
    # predicted: the cat sat (marks removed); gold: the cat sat on the mat -> common 3
    # precision 3/3, recall 3/6 -> F1 = 2 * 1 * 0.5 / 1.5
    assert token_f1("The cat sat [1].", "the cat sat on the mat") == pytest.approx(2 / 3)
    assert token_f1("nothing shared", "the cat") == 0.0


def test_rouge_l_by_hand():
    # LCS of "a b c d" and "a x c d" is "a c d": P = R = 3/4
    assert rouge_l("a b c d", "a x c d") == pytest.approx(0.75)
    assert rouge_l("d c b a", "a b c d") == pytest.approx(0.25)  # order matters: LCS 1
    assert rouge_l("", "a") == 0.0


def test_refusals_are_answers_only_about_missing_sources():
    assert is_refusal("The documents do not say how many days carry over.")
    assert is_refusal("")
    assert not is_refusal("Five days carry over [1]. The documents do not mention exceptions.")


def _set() -> EvalSet:
    queries = tuple(Query(f"q{i}", f"question {i}?") for i in range(10))
    judgements = tuple(Judgement(f"q{i}", f"doc{i}.md", 1, f"answer {i}") for i in range(10) if i != 3)
    return EvalSet(name="tiny", root=__import__("pathlib").Path("."), queries=queries, judgements=judgements)


def test_the_sample_is_fixed_by_its_seed_and_skips_unjudged_questions():
    first, again, other = sample_questions(_set(), 4, 1), sample_questions(_set(), 4, 1), sample_questions(_set(), 4, 3)
    assert [s.query_id for s in first] == [s.query_id for s in again]
    assert [s.query_id for s in first] != [s.query_id for s in other]
    assert all(s.query_id != "q3" and s.passage == f"answer {s.query_id[1:]}" for s in first)


def _record(**overrides) -> AnswerRecord:
    base = dict(
        query_id="q", answer="a", provider="local", cites_relevant=True, invalid_citations=0, cited_sentences=2,
        supported_sentences=2, token_f1=0.5, rouge_l=0.4, refusal=False, sources_ms=1000.0, first_token_ms=4000.0,
        total_ms=9000.0, tokens=40, tokens_per_s=8.0, prompt_tokens=900,
    )
    return AnswerRecord(**(base | overrides))


def test_summary_by_hand():
    records = [
        _record(),
        _record(cites_relevant=False, invalid_citations=2, supported_sentences=0, refusal=True, token_f1=0.1, rouge_l=0.2,
                sources_ms=3000.0, first_token_ms=None, total_ms=5000.0, tokens_per_s=None, prompt_tokens=None),
    ]
    s = summarise("default", 13, records)
    assert (s.cites_relevant, s.invalid_citations, s.supported_sentences, s.refusals) == (0.5, 1.0, 0.5, 0.5)
    assert (s.token_f1, s.rouge_l) == (pytest.approx(0.3), pytest.approx(0.3))
    assert (s.first_token_ms_p50, s.tokens_per_s, s.prompt_tokens) == (4000.0, 8.0, 900)
    assert s.sources_ms_p50 <= s.sources_ms_p95 == 3000.0
    assert "| default | 50% | 1.00 | 50% |" in markdown([s], 2, 13)


def test_routed_answers_and_citations_the_model_wrote_by_hand():
    records = [
        _record(provider="router", routed=True, model_citations=0, attributed_citations=0),
        _record(model_citations=3, attributed_citations=1),
        _record(provider="extractive", model_citations=2, attributed_citations=0),  # quotes: not the model's
        _record(model_citations=0, attributed_citations=0),
    ]
    s = summarise("r", 13, records)
    assert (s.routed, s.model_answered, s.model_citations) == (0.25, 0.5, 0.75)
    assert summarise("none", 13, [_record()]).model_citations is None  # no citation at all: not a share
    assert "| r | 100% | 0.00 | 100% | 50% | 75% |" in markdown([s], 2, 13)


def test_the_report_keeps_every_run_and_a_rerun_replaces_its_own(tmp_path):
    first = new_run("cairn eval A", 2, 13, [summarise("a", 13, [_record()])], {}, 1.0)
    b_rows = [summarise("b", 13, [_record(cites_relevant=False)])]
    second = new_run("cairn eval B", 2, 13, b_rows, {"b": [_record()]}, 1.0)
    write_runs(tmp_path, merge_run(merge_run([], first), second))
    again = new_run("cairn eval A", 2, 13, [summarise("a2", 13, [_record()])], {}, 1.0)
    runs = merge_run(load_runs(tmp_path), again)
    assert [r.command for r in runs] == ["cairn eval B", "cairn eval A"]
    assert runs[0].answers["b"][0].query_id == "q"  # the answers are kept with their run
    (tmp_path / "answers_notes.md").write_text("Chosen: a2.")
    text = write_runs(tmp_path, runs)
    assert "| 1 | b | 0% |" in text and "| 2 | a2 | 100% |" in text and "| a |" not in text
    assert "`cairn eval A`" in text and text.rstrip().endswith("Chosen: a2.")
    assert (tmp_path / "answers.md").read_text().strip() == text.strip()


def test_one_real_answer_is_scored(answer_search):
    answers = AnswerService(answer_search, answer_settings(llm_providers=["extractive"]))
    sample = AnswerSample(
        query_id="meal", question="What is the daily meal allowance abroad?", relevant=["handbook/expenses.md"],
        passage="The daily meal allowance abroad is 60 euros.",
    )
    record = answer_one(answers, PUBLIC, sample)
    assert record.cites_relevant and record.invalid_citations == 0
    assert record.cited_sentences >= 1 and record.supported_sentences == record.cited_sentences  # quotes support themselves
    assert 0 < record.token_f1 <= 1 and 0 < record.rouge_l <= 1 and not record.refusal
    assert record.sources_ms <= record.total_ms

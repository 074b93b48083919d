"""`cairn bench chat` (issue 17's on-screen timings): the chat page started as `cairn ui`, asked the
sample questions in Chromium, each timed from Enter to the source cards, the first answer text
and the finished answer. Run here with the extractive provider: the timings' order and the
report are what is checked, not the model's speed (evals/reports/bench/ measures that)."""

from __future__ import annotations

import pytest
from fixtures_ui import CHROMIUM, clean_environ

from evals.bench_answer import read_questions, sample_questions_file
from evals.bench_chat_page import bench_chat_page, markdown


@pytest.mark.browser
def test_the_chat_page_bench_times_each_question_on_screen(sample_data_index):
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make setup`")
    questions = read_questions(sample_questions_file(), 2)
    environ = clean_environ() | {"CAIRN_LLM_PROVIDERS": '["extractive"]', "CAIRN_RERANKER": "none"}
    bench = bench_chat_page(sample_data_index, "cairn", questions, environ, log=lambda _: None)

    assert [t.question for t in bench.timings] == [q.question for q in questions]
    for timing in bench.timings:
        assert timing.answered_by.startswith("extractive"), timing
        assert timing.sources_s is not None and 0 < timing.sources_s <= timing.done_s
    assert bench.p50("done_s") is not None
    text = markdown(bench)
    assert "| **p50** |" in text and questions[1].question in text

"""Sources first (issue 17): the chat page shows the passages it found, with their scores, as
soon as retrieval is done, writes the answer above them as its tokens come, then replaces both
with the final answer and the cards of what it cites.

AppTest sees only a script run's end, so the rendering is checked there piece by piece; the
order in time is checked in Chromium, against a fake OpenAI-compatible model that waits
seconds before its first token and between the next ones.

    CAIRN_UI_SOURCES_SCREENSHOT=/tmp/sources-first.png  keep the mid-answer screenshot there
    CAIRN_UI_SOURCES_RERANKER=auto                      time it with the default reranker
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fixtures_answer import LEAVE_BLOCKS, FakeLLMServer
from fixtures_ui import CHROMIUM, CHROMIUM_ARGS, clean_environ, page_env, running_ui

from answers.schemas import ContextEvent, TokenEvent
from retrieval.search_schemas import ContextResponse, Hit, RerankInfo, StageScore, StageScores


def _hit(block, rank: int, rerank: float | None) -> Hit:
    return Hit(
        id=block.chunk_ids[0],
        doc_id=block.doc_id,
        source="docs",
        path=block.path,
        title=block.title,
        section=block.section,
        page=block.page,
        chunk_index=0,
        file_type=block.path.rsplit(".", 1)[-1],
        text=block.text,
        scores=StageScores(
            dense=StageScore(score=0.8 - rank / 10, rank=rank),
            fused=StageScore(score=0.0325 - rank / 1000, rank=rank),
            rerank=StageScore(score=rerank, rank=rank) if rerank is not None else None,
        ),
    )


def context_event(rerank: bool = True) -> ContextEvent:
    """Retrieval as the service reports it: three blocks, block 1 opening with a hostile image."""
    blocks = [LEAVE_BLOCKS[0].model_copy(update={"text": "![x](http://leak.example/a.png) " + LEAVE_BLOCKS[0].text})]
    blocks += LEAVE_BLOCKS[1:]
    hits = [_hit(b, rank, 0.9 - rank / 10 if rerank else None) for rank, b in enumerate(blocks, 1)]
    retrieval = ContextResponse(
        query="annual leave",
        hits=hits,
        rerank=RerankInfo(reranker="cross-encoder:test" if rerank else "none", applied=rerank),
        timings_ms={"encode": 5.0, "search": 9.0, "rerank": 40.0, "assemble": 1.0, "total": 55.0},
        blocks=blocks,
        dropped=[],
        token_budget=1500,
        tokens_used=sum(b.tokens for b in blocks),
    )
    return ContextEvent(rewritten_query=None, context=blocks, retrieval=retrieval)


def _show_found_sources(event_json: str) -> None:
    from answers.schemas import ContextEvent
    from app.render import found_sources

    found_sources(ContextEvent.model_validate_json(event_json), 0)


def _stream_without_an_end(events_json: list[str]) -> None:
    from pydantic import TypeAdapter

    from answers.schemas import AnswerEvent
    from app.chat import Turn, record
    from app.render import stream_answer

    events = [TypeAdapter(AnswerEvent).validate_json(e) for e in events_json]
    turn = Turn(question="How many days of leave?")
    stream_answer(turn, record(turn, iter(events)), 0)


def _texts(at) -> list[str]:
    return [e.value for e in [*at.markdown, *at.caption] if isinstance(e.value, str)]


@pytest.mark.parametrize("rerank", [True, False])
def test_found_sources_are_cards_with_scores_and_openings(rerank):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_show_found_sources, args=(context_event(rerank).model_dump_json(),)).run()
    assert not at.exception, at.exception
    texts = _texts(at)
    assert texts[0].startswith("**Sources found** · 3 passage(s)")
    for block in LEAVE_BLOCKS:
        assert f"**[{block.n}] {block.title}**" in texts
    stage = "rerank 0.8000" if rerank else "fused 0.0315"  # the last stage block 1's chunk went through
    assert f"`policies/leave-policy.pdf` · page 1 · score {stage}, #1 of 3" in texts
    assert any(t.startswith("> ") and "25 days of paid annual leave" in t for t in texts)  # the opening
    assert not any("![" in t for t in texts)  # a document's image is named, not loaded
    assert any("image 'x' from leak.example, not loaded" in t for t in texts)


def test_while_an_answer_is_written_its_text_stands_above_the_found_sources():
    from streamlit.testing.v1 import AppTest

    tokens = [TokenEvent(provider="local", text=t) for t in ("Employees get ", "25 days ![y](http://leak.example/b.png)")]
    events = [e.model_dump_json() for e in [context_event(), *tokens]]
    at = AppTest.from_function(_stream_without_an_end, args=(events,)).run()
    assert not at.exception, at.exception
    texts = [m.value for m in at.markdown]
    assert texts[0].startswith("Employees get 25 days") and "![" not in texts[0]  # the text so far, first
    assert texts[1].startswith("**Sources found**")  # the cards under it


# --- in Chromium: the order in time ----------------------------------------------------------------

# data/sample_build/questions.md, question 1: EUR 62, in intranet/travel-expense-policy.html.
QUESTION = "What is the per diem for a full travel day in Germany?"
SOURCE = "intranet/travel-expense-policy.html"
REPLY = ["The per diem for a full travel day in Germany is EUR 62 [1]. ", "It covers meals ", "on that day [1]."]
FIRST_TOKEN_DELAY_S = 8.0
PIECE_DELAY_S = 3.0


@pytest.mark.browser
def test_in_chromium_the_sources_show_before_the_first_token(sample_data_index, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make setup` (it installs Debian's chromium)")
    model = FakeLLMServer("openai")
    model.mode, model.delay_s, model.piece_delay_s, model.reply = "slow", FIRST_TOKEN_DELAY_S, PIECE_DELAY_S, REPLY
    reranker = os.environ.get("CAIRN_UI_SOURCES_RERANKER", "none")
    env = clean_environ() | page_env(
        sample_data_index,
        CAIRN_LLM_PROVIDERS='["openai", "extractive"]',
        CAIRN_OPENAI_BASE_URL=model.url,
        CAIRN_LLM_TIMEOUT_S="60",
        CAIRN_RERANKER=reranker,
    )
    screenshot = Path(os.environ.get("CAIRN_UI_SOURCES_SCREENSHOT") or tmp_path / "sources-first.png")
    try:
        with running_ui(env, tmp_path) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(url)
            expect(page.get_by_test_id("stSidebar").get_by_text("Documents", exact=True)).to_be_visible(timeout=180_000)

            box = page.get_by_test_id("stChatInputTextArea")
            box.fill(QUESTION)
            asked = time.monotonic()
            box.press("Enter")

            answer = page.get_by_test_id("stChatMessage").nth(1)
            found = answer.locator("[class*='st-key-found-0-']")
            expect(found.filter(has_text=SOURCE).first).to_be_visible(timeout=120_000)
            cards_at = time.monotonic()
            # On screen before the model has even sent its first token.
            assert model.sent_at == [], "the first token was sent before the sources were on screen"
            expect(answer).not_to_contain_text("per diem for a full travel day in Germany is")
            expect(found.first).to_contain_text("score ")  # its score, as in the final cards
            expect(found.first.locator("blockquote")).not_to_be_empty()  # and an opening of the passage

            expect(answer).to_contain_text("EUR 62", timeout=60_000)
            first_token_at = time.monotonic()
            # The answer streams above the sources, which stay until the final answer replaces them.
            expect(found.first).to_be_visible()
            assert len(model.sent_at) < len(REPLY), "the answer was complete before it could be seen streaming"
            text_box = answer.get_by_text("per diem for a full travel day", exact=False).first.bounding_box()
            card_box = found.first.bounding_box()
            assert text_box and card_box and text_box["y"] < card_box["y"]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)

            expect(answer).to_contain_text("Answered by", timeout=60_000)
            final_at = time.monotonic()
            expect(found).to_have_count(0)  # replaced by the cited sources
            expect(answer.locator("[class*='st-key-source-0-']").filter(has_text=SOURCE).first).to_be_visible()
            expect(page.locator("body")).not_to_contain_text("Traceback")
            browser.close()
    finally:
        model.close()
    print(
        f"reranker {reranker}: sources on screen {cards_at - asked:.2f} s after Enter, first token "
        f"{first_token_at - asked:.2f} s (the model waits {FIRST_TOKEN_DELAY_S:g} s), "
        f"final answer {final_at - asked:.2f} s"
    )
    assert cards_at < first_token_at < final_at
    assert screenshot.stat().st_size > 10_000

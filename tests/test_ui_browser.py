"""The chat page in a real browser: `cairn ui` on the sample corpus (data/sample), driven by
Playwright on Debian's Chromium (`make setup` installs it; `playwright install` cannot run
offline).

Two variables make the same test refresh the README's screenshot with the local model:
    CAIRN_UI_SCREENSHOT=docs/screenshot.png CAIRN_UI_PROVIDERS='["local", "extractive"]' \
        .venv/bin/pytest -m browser tests/test_ui_browser.py
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_ui import CHROMIUM, CHROMIUM_ARGS, REPO, clean_environ, page_env

pytestmark = pytest.mark.browser

# data/sample_build/questions.md, question 1: EUR 62, in intranet/travel-expense-policy.html.
QUESTION = "What is the per diem for a full travel day in Germany?"
SOURCE = "intranet/travel-expense-policy.html"
ANSWER_TIMEOUT_MS = 600_000  # a local model on 2 shared cores takes minutes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"`cairn ui` exited early:\n{log.read_text()[-3000:]}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"`cairn ui` did not listen on port {port} within {timeout_s:g} s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def ui_url(sample_data_index, tmp_path):
    port = _free_port()
    env = clean_environ() | page_env(
        sample_data_index,
        CAIRN_LLM_PROVIDERS=os.environ.get("CAIRN_UI_PROVIDERS", '["extractive"]'),
        CAIRN_LLM_MODEL_DIR=str(REPO / "data" / "models" / "llm"),
    )
    log = tmp_path / "cairn-ui.log"
    cairn = Path(sys.executable).with_name("cairn")
    with log.open("w") as out:
        # From an empty folder: no .env file or relative path of the checkout leaks in.
        process = subprocess.Popen(
            [str(cairn), "ui", "--port", str(port)], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for_port(port, process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)  # `cairn ui` became Streamlit: it stops cleanly on Ctrl-C
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text()[-3000:])  # shown when the test fails


def test_the_page_answers_with_sources_and_scores_in_chromium(ui_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make setup` (it installs Debian's chromium)")
    screenshot = Path(os.environ.get("CAIRN_UI_SCREENSHOT", tmp_path / "chat.png"))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.goto(ui_url)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text("Documents", exact=True)).to_be_visible(timeout=180_000)  # models loaded, index open
            expect(sidebar).not_to_contain_text("cairn ingest")  # the index is not empty

            box = page.get_by_test_id("stChatInputTextArea")
            box.fill(QUESTION)
            box.press("Enter")

            answer = page.get_by_test_id("stChatMessage").nth(1)
            panel = answer.get_by_test_id("stExpander").filter(has_text="Retrieval:")
            expect(panel).to_have_count(1, timeout=ANSWER_TIMEOUT_MS)
            expect(answer).to_contain_text("62")  # EUR 62
            expect(answer).to_contain_text("Answered by")

            cards = answer.locator("[class*='st-key-source-0-']")
            expect(cards.first).to_be_visible()
            expect(cards.filter(has_text=SOURCE).first).to_be_visible()

            panel.locator("summary").click()
            expect(panel.get_by_test_id("stDataFrame")).to_be_visible()
            expect(panel.get_by_test_id("stVegaLiteChart")).to_be_visible()
            expect(panel).to_contain_text("Time per stage")
            expect(page.locator("body")).not_to_contain_text("Traceback")

            page.wait_for_timeout(1000)  # let the chart finish drawing
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000

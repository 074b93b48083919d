"""The live index in Chromium (issue 18): an administrator signs in on `cairn ui` over a fresh
embedded index, uploads a DOCX through the Documents panel, watches the job finish, asks what
only that file says and sees it cited; deletes it from the documents view, asks again, and it
is gone from the answer and its sources. Then a SIGTERM stops `cairn ui`, and the serving.json
it wrote next to the index goes with it (the page process, not a parser process it spawned, is
the holder it names).

    CAIRN_UI_INGEST_SCREENSHOTS=/tmp/shots  keep the screenshots there (taken on failure too)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from fixtures_live import ADMIN_KEY, STAFF_KEY
from fixtures_ui import CHROMIUM, CHROMIUM_ARGS, clean_environ, page_env, running_ui

SOURCE = "field-notes"
DOCX = "kestrel-brief.docx"
CODE_WORD = "AMBER-NIGHTJAR-42"  # in no other document
QUESTION = "What is the code word of Project Kestrel?"
LOAD_TIMEOUT_MS = 180_000
JOB_TIMEOUT_MS = 180_000  # parser processes start with the first job
ANSWER_TIMEOUT_MS = 120_000


def write_docx(path: Path) -> Path:
    from docx import Document

    document = Document()
    document.add_heading("Project Kestrel briefing", level=1)
    document.add_paragraph(f"The code word of Project Kestrel is {CODE_WORD}.")
    document.add_paragraph("Project Kestrel surveys the nesting sites along the northern cliffs every spring.")
    document.save(path)
    return path


def write_identities(path: Path) -> Path:
    path.write_text(
        "anonymous_groups: [public]\nusers:\n"
        f"  - {{user: ada, api_key: {ADMIN_KEY}, groups: [public], admin: true}}\n"
        f"  - {{user: sam, api_key: {STAFF_KEY}, groups: [public]}}\n"
    )
    return path


def _screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CAIRN_UI_INGEST_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path


def _ask(page, question: str, turn: int):
    """The assistant message of ``turn`` (0-based), once its answer is complete."""
    from playwright.sync_api import expect

    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(2 * turn + 1)
    expect(answer).to_contain_text("Answered by", timeout=ANSWER_TIMEOUT_MS)
    return answer


@pytest.mark.browser
def test_in_chromium_an_uploaded_docx_is_cited_then_deleted(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make setup` (it installs Debian's chromium)")
    files = tmp_path / "to-upload"
    files.mkdir()
    docx = write_docx(files / DOCX)
    other = files / "canteen.md"  # keeps the index from going empty when the DOCX goes
    other.write_text("# Canteen\n\nThe canteen opens at noon and serves soup on Fridays.\n")
    data_dir = tmp_path / "index"  # fresh: nothing indexed yet
    env = clean_environ() | page_env(
        data_dir,
        CAIRN_IDENTITIES_FILE=str(write_identities(tmp_path / "identities.yaml")),
        CAIRN_UPLOAD_DIR=str(tmp_path / "uploads"),
    )
    with running_ui(env, tmp_path, stop=signal.SIGTERM) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        shot = "ingest-start.png"
        try:
            page.goto(url)
            sidebar = page.get_by_test_id("stSidebar")
            key = sidebar.get_by_label("API key", exact=True)
            expect(key).to_be_visible(timeout=LOAD_TIMEOUT_MS)
            expect(sidebar.get_by_test_id("stMetric")).to_have_count(0)  # nothing indexed
            key.fill(ADMIN_KEY)
            key.press("Enter")
            expect(sidebar).to_contain_text("Signed in as ada", timeout=60_000)

            shot = "ingest-upload.png"
            sidebar.get_by_text("Add documents", exact=True).click()
            name = sidebar.get_by_label("New source name", exact=True)
            name.fill(SOURCE)
            name.press("Enter")
            sidebar.get_by_test_id("stFileUploaderDropzoneInput").set_input_files([str(docx), str(other)])
            expect(sidebar.get_by_test_id("stFileUploader")).to_contain_text(DOCX, timeout=30_000)
            upload = sidebar.get_by_role("button", name="Upload and index")
            expect(upload).to_be_enabled(timeout=30_000)
            upload.click()
            expect(sidebar).to_contain_text(f"2 file(s) uploaded to '{SOURCE}'", timeout=60_000)
            expect(sidebar).to_contain_text(
                f"Last job ('{SOURCE}'): 2 added, 0 updated, 0 removed, 0 failed", timeout=JOB_TIMEOUT_MS
            )
            expect(sidebar.get_by_test_id("stMetric").filter(has_text="Documents")).to_contain_text("2")

            shot = "ingest-cited.png"
            answer = _ask(page, QUESTION, 0)
            expect(answer).to_contain_text(CODE_WORD)
            card = answer.locator("[class*='st-key-source-0-']").filter(has_text=DOCX)
            expect(card.first).to_be_visible()
            expect(card.first).to_contain_text(CODE_WORD)
            _screenshot(page, shot, tmp_path)

            shot = "ingest-delete.png"
            sidebar.get_by_role("button", name="Manage documents").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text(DOCX, timeout=30_000)  # the documents table
            dialog.get_by_test_id("stSelectbox").click()
            page.get_by_role("option", name=f"{SOURCE}/{DOCX}").click()
            dialog.get_by_role("button", name="Delete from the index").click()
            expect(sidebar).to_contain_text(f"Deleted {SOURCE}/{DOCX}", timeout=60_000)
            expect(sidebar).to_contain_text("its uploaded file was deleted too")
            assert not (tmp_path / "uploads" / SOURCE / DOCX).exists()

            expect(sidebar.get_by_test_id("stMetric").filter(has_text="Documents")).to_contain_text("1")

            shot = "ingest-gone.png"
            sidebar.get_by_role("button", name="Clear the conversation").click()  # the same question, anew
            expect(page.get_by_test_id("stChatMessage")).to_have_count(0, timeout=30_000)
            again = _ask(page, QUESTION, 0)
            expect(again).not_to_contain_text(CODE_WORD)
            expect(again).not_to_contain_text(DOCX)
            expect(again.locator("[class*='st-key-source-0-']").filter(has_text=DOCX)).to_have_count(0)
            expect(page.locator("body")).not_to_contain_text("Traceback")
            _screenshot(page, shot, tmp_path)
            _assert_holder_is_the_page(data_dir, url)
        except BaseException:
            print(f"screenshot at failure: {_screenshot(page, 'failed-' + shot, tmp_path)}")
            raise
        finally:
            browser.close()
    assert not (data_dir / "serving.json").exists(), "serving.json outlived `cairn ui` after SIGTERM"


def _assert_holder_is_the_page(data_dir: Path, url: str) -> None:
    """serving.json names the process listening at ``url``; an ingest job's parser processes
    must not take its place (its pid would then outlive nothing that could remove it)."""
    import psutil

    from runtime.holder import read_holder

    holder = read_holder(data_dir)
    assert holder is not None and holder.kind == "ui", holder
    port = int(url.rsplit(":", 1)[1])
    listening = {c.laddr.port for c in psutil.Process(holder.pid).net_connections() if c.status == psutil.CONN_LISTEN}
    assert port in listening, f"serving.json names pid {holder.pid}, which does not serve the page at {url}"

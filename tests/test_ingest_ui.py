"""The chat page's documents panel, run headless by Streamlit's AppTest over a real index: shown
to administrators only; "Sync now" runs a job in the page's own process while it holds the index;
over CAIRN_API_URL the same panel works through a real service's ingest API (both backends),
and its refusals (403, 409, 413, 422) are shown in words."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures_live import ADMIN_KEY, STAFF_KEY, wait_for


def _identities(path: Path) -> Path:
    path.write_text(
        "anonymous_groups: [public]\nusers:\n"
        f"  - {{user: ada, api_key: {ADMIN_KEY}, groups: [public], admin: true}}\n"
        f"  - {{user: sam, api_key: {STAFF_KEY}, groups: [public]}}\n"
    )
    return path


def _sidebar_text(at) -> str:
    return " ".join(str(e.value) for e in [*at.sidebar.markdown, *at.sidebar.caption, *at.sidebar.subheader])


def test_only_an_administrator_gets_the_documents_panel(page, corpus_index, tmp_path):
    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(_identities(tmp_path / "identities.yaml"))).run()
    assert "Documents" not in [s.value for s in at.sidebar.subheader]  # anonymous
    at.text_input(key="api_key").set_value(STAFF_KEY).run()
    assert not at.exception and "Documents" not in [s.value for s in at.sidebar.subheader]
    assert not [b for b in at.sidebar.button if b.key == "docs_sync"]

    at.text_input(key="api_key").set_value(ADMIN_KEY).run()
    assert not at.exception, at.exception
    assert "Documents" in [s.value for s in at.sidebar.subheader]
    assert [e.label for e in at.sidebar.expander if e.label == "Add documents"]
    assert {"docs_sync", "docs_view", "docs_upload"} <= {b.key for b in at.sidebar.button}
    assert (corpus_index / "serving.json").exists()  # `cairn ingest` will point here, not at the lock


def test_sync_now_runs_a_job_in_the_page_process(page, corpus_index, corpus_dir, tmp_path):
    from ingest.sources import SourceEntry, SourceRegistry, registry_path

    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(_identities(tmp_path / "identities.yaml"))).run()
    at.text_input(key="api_key").set_value(ADMIN_KEY).run()
    sync = next(b for b in at.sidebar.button if b.key == "docs_sync")
    sync.click().run()
    assert not at.exception, at.exception
    assert "No source to sync yet." in _sidebar_text(at)  # built outside the page: no source known

    # as a job of this page (an upload, a sync) would have recorded it
    SourceRegistry(registry_path(corpus_index, "cairn")).put(
        SourceEntry(name="company", root=str(corpus_dir["company"]))
    )
    next(b for b in at.sidebar.button if b.key == "docs_sync").click().run()
    assert "Sync of 1 source(s) queued." in _sidebar_text(at)
    deadline = time.monotonic() + 300
    while "Last job ('company')" not in _sidebar_text(at) and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert "Last job ('company'): 0 added, 0 updated, 0 removed, 0 failed" in _sidebar_text(at)


# --- over CAIRN_API_URL: the same panel through the service's ingest API ------------------------

CODE_WORD = "AMBER-NIGHTJAR-42"  # in no other document
DOCX = "kestrel-brief.docx"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _docx_bytes() -> bytes:
    import io

    from docx import Document

    document = Document()
    document.add_heading("Project Kestrel briefing", level=1)
    document.add_paragraph(f"The code word of Project Kestrel is {CODE_WORD}.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.fixture(params=["edge", "server"])
def service_url(request, tmp_path, encoders, parser_pool):
    """`cairn serve`'s app (ingest jobs, serving.json) in a uvicorn server on loopback, over an
    empty index of either backend; its uploads are held to 0.05 MB a file."""
    import threading

    import uvicorn
    from fixtures_live import live_runtime
    from fixtures_ui import free_port

    from cairn.api.app import create_app
    from cairn.api.serving import serving

    (tmp_path / "docs").mkdir()
    runtime = live_runtime(
        request.param, tmp_path, encoders, parser_pool, max_file_mb=0.05, llm_providers=["extractive"]
    )
    app = create_app(runtime.search, runtime.identities, answers=runtime.answers)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    with serving(app, runtime, "127.0.0.1", port):
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
        thread.join(timeout=10)
    runtime.close()


def _wait_for_text(at, text: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while text not in _sidebar_text(at) and time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
    assert text in _sidebar_text(at), _sidebar_text(at)
    return at


def _upload(at, source: str | None, files: list[tuple[str, bytes, str]], attempt: int = 0):
    if source is not None:
        at.text_input(key="docs_new_source").set_value(source)
    at.file_uploader(key=f"docs_files_{attempt}").set_value(files).run()
    next(b for b in at.sidebar.button if b.key == "docs_upload").click().run()
    assert not at.exception, at.exception
    return at


def _answer(at, question: str) -> str:
    """The latest answer's text (what the chat shows, its sources included)."""
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    message = [m for m in at.chat_message if m.name == "assistant"][-1]
    return " ".join([m.value for m in message.markdown] + [c.value for c in message.caption])


def test_over_http_an_administrator_uploads_asks_and_deletes(page, service_url, tmp_path):
    at = page(tmp_path / "unused", CAIRN_API_URL=service_url, CAIRN_API_KEY=ADMIN_KEY).run()
    assert not at.exception, at.exception
    assert "Documents" in [s.value for s in at.sidebar.subheader]
    assert at.sidebar.selectbox(key="docs_source").options == ["(a new source)"]  # nothing uploaded yet

    _upload(at, "field-notes", [(DOCX, _docx_bytes(), DOCX_TYPE)])
    assert "1 file(s) uploaded to 'field-notes': job " in _sidebar_text(at)
    _wait_for_text(at, "Last job ('field-notes'): 1 added, 0 updated, 0 removed, 0 failed")
    assert at.sidebar.selectbox(key="docs_source").options == ["field-notes", "(a new source)"]

    cited = _answer(at, "What is the code word of Project Kestrel?")
    assert CODE_WORD in cited and DOCX in cited  # the answer, and its source card

    next(b for b in at.sidebar.button if b.key == "docs_view").click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key="docs_delete_choice").value == f"field-notes/{DOCX}"
    # A click in the dialog reruns only the dialog in a browser; AppTest reruns the page, which
    # opens the dialog again only with the click that opened it.
    at.button(key="docs_view").click()
    at.button(key="docs_delete").click().run()
    assert not at.exception, at.exception
    assert f"Deleted field-notes/{DOCX} (1 chunks); its uploaded file was deleted too." in _sidebar_text(at)
    assert not (tmp_path / "uploads" / "field-notes" / DOCX).exists()

    at.button(key="clear").click().run()
    again = _answer(at, "What is the code word of Project Kestrel?")
    assert CODE_WORD not in again and DOCX not in again


def test_over_http_refusals_are_shown_in_words(page, service_url, tmp_path):
    import httpx

    from app.client import ClientError, HttpClient
    from app.documents_admin import ServiceDocumentsAdmin

    handbook = tmp_path / "docs" / "handbook"
    handbook.mkdir()
    (handbook / "leave.md").write_text("# Leave\n\nEveryone gets 25 days of leave.\n")
    queued = httpx.post(f"{service_url}/ingest", json={"folder": str(handbook)}, headers={"X-API-Key": ADMIN_KEY})
    assert queued.status_code == 202, queued.text
    job_url, admin = f"{service_url}/ingest/jobs/{queued.json()['id']}", {"X-API-Key": ADMIN_KEY}
    wait_for(lambda: httpx.get(job_url, headers=admin).json()["state"] == "done", 300, what="the folder's job")

    at = page(tmp_path / "unused", CAIRN_API_URL=service_url, CAIRN_API_KEY=ADMIN_KEY).run()
    note = ("note.md", b"# Note\n\nA short note.\n", "text/markdown")
    _upload(at, "handbook", [note])  # 409: the source is a folder of the service's machine
    assert at.sidebar.error[0].value.startswith(
        "The Cairn service refused to take the upload into 'handbook': source 'handbook' is the folder"
    )
    _upload(at, "bad..name!", [note])  # 422
    assert "'bad..name!' is not a source name for uploads" in at.sidebar.error[0].value
    _upload(at, "big", [("big.txt", b"word " * 20_000, "text/plain")])  # 413: 100 kB, over 0.05 MB
    assert "refused to take the upload into 'big'" in at.sidebar.error[0].value
    assert "CAIRN_MAX_FILE_MB" in at.sidebar.error[0].value

    # A key that is not an administrator's gets no panel (None), and the service refuses it anyway (403).
    # (Not through a second page here: the page keeps one client per configuration, and the
    # settings it is keyed by hide the API key.)
    staff = HttpClient(service_url, api_key=STAFF_KEY)
    assert staff.documents_admin() is None
    with pytest.raises(ClientError, match="refused to sync its sources: 'sam' is not an administrator"):
        ServiceDocumentsAdmin(staff).sync()

"""The chat page's documents panel, run headless by Streamlit's AppTest over a real index: shown
to administrators only; "Sync now" runs a job in the page's own process while it holds the index."""

from __future__ import annotations

import time
from pathlib import Path

from fixtures_live import ADMIN_KEY, STAFF_KEY


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

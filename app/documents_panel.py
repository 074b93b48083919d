"""The sidebar's documents panel, for administrators: upload files into a source, sync every
source now, follow the running job, and open the documents view (each indexed file with its
type, chunks, groups and when it was indexed; the files the last syncs could not index, with
the reason) to delete a document.

It works through the client's `DocumentsAdmin`: the page's own ingest jobs when it holds the
index (the default), the service's ingest API over CAIRN_API_URL.
"""

from __future__ import annotations

import streamlit as st

from app.client import CairnClient, ClientError
from app.documents_admin import DocumentsAdmin
from app.safe_markdown import as_markdown
from ingest.discovery import SUPPORTED_TYPES
from ingest.jobs import IngestJobStatus, JobState

NEW_SOURCE = "(a new source)"
UPLOAD_TYPES = sorted({suffix.lstrip(".") for suffix in SUPPORTED_TYPES})


def documents_panel(client: CairnClient, user: str | None) -> None:
    """Shown to an administrator; to nobody else."""
    try:
        admin = client.documents_admin(user)
    except ClientError as exc:  # what would give this page the panel
        st.caption(as_markdown(str(exc)))
        return
    if admin is None:
        return
    st.subheader("Documents")
    try:
        jobs = admin.jobs()
        if any(not job.finished for job in jobs):
            _live_progress(admin)
        else:
            _last_job(admin, jobs)
        with st.expander("Add documents", expanded=False):
            _upload_form(admin)
        sync_column, view_column = st.columns(2)
        if sync_column.button(
            "Sync now", key="docs_sync", help="Index new and changed files of every source, drop deleted ones"
        ):
            queued = admin.sync()
            if queued:
                st.session_state["docs_job"] = queued[0].id
            st.session_state["docs_notice"] = (
                f"Sync of {len(queued)} source(s) queued." if queued else "No source to sync yet."
            )
            st.rerun()
        if view_column.button("Manage documents", key="docs_view"):
            _documents_view(admin)
    except ClientError as exc:
        st.error(as_markdown(str(exc)))
    if notice := st.session_state.pop("docs_notice", None):
        st.caption(as_markdown(notice))


def _upload_form(admin: DocumentsAdmin) -> None:
    sources = sorted(entry.name for entry in admin.sources() if entry.uploads)
    choice = st.selectbox("Source", [*sources, NEW_SOURCE], key="docs_source")
    groups: list[str] = []
    if choice == NEW_SOURCE:
        source = st.text_input("New source name", key="docs_new_source", placeholder="e.g. hr-handbook").strip()
        groups = st.multiselect(
            "Who may read it (groups)", admin.known_groups(), default=["public"], key="docs_groups",
            accept_new_options=True,
            help="Written to the new source's cairn-acl.yaml; edit that file later to change them.",
        )  # fmt: skip
    else:
        source = choice
    attempt = st.session_state.setdefault("docs_upload_round", 0)  # a new key empties the uploader
    limit = admin.upload_limit_mb
    each = f"Each up to {limit:g} MB (CAIRN_MAX_FILE_MB)." if limit else "Each up to the service's CAIRN_MAX_FILE_MB."
    files = st.file_uploader(
        "Files", type=UPLOAD_TYPES, accept_multiple_files=True, key=f"docs_files_{attempt}", help=each
    )  # fmt: skip
    if st.button("Upload and index", key="docs_upload", disabled=not (files and source)):
        try:
            job = admin.upload(source, [(f.name, f) for f in files], groups if choice == NEW_SOURCE else None)
        except ClientError as exc:
            st.error(as_markdown(str(exc)))
            return
        st.session_state["docs_upload_round"] = attempt + 1
        st.session_state["docs_job"] = job.id
        st.session_state["docs_notice"] = f"{len(files)} file(s) uploaded to '{source}': job {job.id} queued."
        st.rerun()


def _describe(job: IngestJobStatus) -> str:
    if job.state == JobState.queued:
        return f"'{job.source}': queued"
    if job.files_to_index is None:
        return f"'{job.source}': looking for changes"
    eta = f", about {job.eta_s:.0f} s left" if job.eta_s else ""
    return f"'{job.source}': {job.files_done}/{job.files_to_index} files, {job.chunks_written} chunks{eta}"


@st.fragment(run_every=1.0)
def _live_progress(admin: DocumentsAdmin) -> None:
    """Refreshes itself every second while a job runs; the whole page once it is over."""
    try:
        active = [job for job in admin.jobs() if not job.finished]
    except ClientError as exc:
        st.error(as_markdown(str(exc)))
        return
    if not active:
        st.rerun(scope="app")  # counts, filters and the documents view change with the index
    running = next((job for job in active if job.state == JobState.running), active[-1])
    total = running.files_to_index or 0
    st.progress(running.files_done / total if total else 0.0, text=as_markdown(_describe(running)))
    if len(active) > 1:
        st.caption(f"{len(active) - 1} more job(s) waiting")


def _last_job(admin: DocumentsAdmin, jobs: list[IngestJobStatus]) -> None:
    """The job this page queued last (as the service reports it now), else the newest."""
    mine = st.session_state.get("docs_job")
    last = (admin.job(mine) if mine else None) or next(iter(jobs), None)
    if last is None:
        return
    if last.state == JobState.failed:
        st.error(as_markdown(f"Last job ('{last.source}') failed: {last.error.message if last.error else 'unknown'}"))
    elif last.report is not None:
        files = last.report.files
        st.caption(
            as_markdown(
                f"Last job ('{last.source}'): {files.added} added, {files.updated} updated, {files.deleted} removed, "
                f"{files.failed} failed, in {last.report.seconds:.1f} s"
            )
        )


@st.dialog("Documents", width="large")
def _documents_view(admin: DocumentsAdmin) -> None:
    try:
        records = admin.indexed_files()
        failures = [(entry.name, f) for entry in admin.sources() for f in entry.failures]
    except ClientError as exc:
        st.error(as_markdown(str(exc)))
        return
    st.caption(f"{len(records)} indexed file(s), every group: this view is for administrators.")
    st.dataframe(
        [
            {
                "source": r.source, "path": r.path, "type": r.file_type, "chunks": r.chunk_count,
                "groups": ", ".join(r.groups), "indexed at": r.indexed_at[:19].replace("T", " "),
            }
            for r in records
        ],
        hide_index=True,
        width="stretch",
    )  # fmt: skip
    if failures:
        st.markdown("**Files the last sync could not index**")
        st.dataframe([{"source": name, "path": f.path, "reason": f.error} for name, f in failures], hide_index=True)
    if not records:
        return
    labels = {f"{r.source}/{r.path}": r for r in records}
    chosen = st.selectbox("Document", list(labels), key="docs_delete_choice")
    if st.button("Delete from the index", key="docs_delete", type="primary"):
        try:
            deleted = admin.delete_document(labels[chosen].doc_id)
        except ClientError as exc:
            st.error(as_markdown(str(exc)))
            return
        if deleted is None:
            st.warning("It was already gone.")
            return
        where = (
            "its uploaded file was deleted too"
            if deleted.file_removed
            else "its file stays in its folder and comes back at the next sync unless you delete it there"
        )
        st.session_state["docs_notice"] = f"Deleted {chosen} ({deleted.chunks_deleted} chunks); {where}."
        st.rerun()

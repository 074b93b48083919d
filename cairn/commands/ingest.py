"""`cairn ingest FOLDER [--watch]`.

The job runs in this process, or, when a running `cairn serve` holds the embedded index (its
``serving.json`` says so), in that process through its ingest API: the same job, the same
progress. With ``--watch`` the folder is synced again after every burst of changes.
"""

from __future__ import annotations

import queue
import sys
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.markup import escape

from cairn.commands.ingest_follow import (  # noqa: F401 (`cairn index reindex` prints the summary too)
    FillStatusOf,
    StatusOf,
    fill_outcome,
    follow,
    follow_fill,
    outcome,
    print_summary,
)
from cairn.commands.opening import err, fail, load_settings
from cairn.exit_codes import ExitCode
from ingest.jobs import IngestJobStatus
from retrieval.settings import Settings

Submit = Callable[[], IngestJobStatus]


def ingest(
    folder: Path = typer.Argument(..., help="Folder of documents to index (recursive)."),
    source: str = typer.Option(None, help="Name of this source (default: the folder's name)."),
    collection: str = typer.Option(None, help="Collection to write (default: CAIRN_COLLECTION)."),
    no_delete: bool = typer.Option(False, "--no-delete", help="Keep documents that are gone from the folder."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print one JSON object (a line per sync with --watch) instead of the progress bar and table.",
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Keep syncing as files appear, change, move or disappear (Ctrl-C stops)."
    ),
    api_key: Optional[str] = typer.Option(
        None,
        "--api-key",
        envvar="CAIRN_API_KEY",
        help="An administrator's key, when a running `cairn serve` takes the job.",
    ),
    fill_later: bool = typer.Option(
        False,
        "--fill-later",
        help="Return once the documents are searchable; leave storing the reranking model's vectors to the "
        "serving process (`cairn serve` and the chat fill them in the background). By default the command "
        "waits for them, so what follows sees a finished index.",
    ),
) -> None:
    """Index a folder: new and changed files are parsed and embedded, unchanged ones skipped,
    deleted ones removed. When `cairn serve` holds the index, the job runs there. Exit 0 when
    every file was indexed, 1 when some failed, 2 for usage errors, 3 when the index is locked
    or unreachable."""
    if not folder.is_dir():
        raise fail(f"{folder} is not a folder; give the folder of documents to index", ExitCode.USAGE)
    settings = load_settings(collection=collection)
    folder = folder.resolve()
    bar = not as_json and sys.stderr.isatty()

    from runtime.holder import read_holder

    holder = None if settings.uses_server else read_holder(settings.data_dir)
    if holder is None:
        _in_this_process(settings, folder, source, not no_delete, as_json, watch, bar, fill_later)
    elif holder.kind == "ui":
        raise fail(
            f"the index at {settings.data_dir} is held by the chat page (`cairn ui`, pid {holder.pid}), which takes "
            "no jobs from the command line. Add the files from the page's 'Add documents' panel (as an administrator), "
            "or stop the page, run this command, and start the page again; to add documents while people search, "
            "run `cairn serve` and point the page at it with CAIRN_API_URL",
            ExitCode.INDEX_UNAVAILABLE,
        )
    else:
        if collection and collection != holder.collection:
            raise fail(
                f"`cairn serve` (pid {holder.pid}) holds the index and writes collection '{holder.collection}', "
                f"not '{collection}': drop --collection, or stop it first",
                ExitCode.USAGE,
            )
        _in_the_server(settings, holder, folder, source, not no_delete, as_json, watch, bar, api_key, fill_later)


def rerank_encoder_of(settings: Settings):
    """The embedding reranker's model, loaded to fill its vectors; None for other rerankers."""
    from retrieval.rerank import EmbeddingReranker, build_reranker, stored_vector_model

    if stored_vector_model(settings.rerank) is None:
        return None
    reranker = build_reranker(settings.rerank)
    if isinstance(reranker, EmbeddingReranker) and reranker.encoder is None:
        err.print(f"[yellow]warning:[/yellow] {escape(reranker.unavailable_reason or '')}", highlight=False)
    return reranker.encoder if isinstance(reranker, EmbeddingReranker) else None


def _in_this_process(
    settings: Settings,
    folder: Path,
    source: str | None,
    delete_missing: bool,
    as_json: bool,
    watch: bool,
    bar: bool,
    fill_later: bool,
) -> None:
    import threading

    from ingest.jobs import IngestJobs
    from retrieval.encoders import build_encoders
    from retrieval.store import StoreError, open_store

    try:
        store = open_store(settings.storage)
    except StoreError as exc:
        raise fail(str(exc), ExitCode.INDEX_UNAVAILABLE) from None
    jobs = None
    try:
        dense, sparse = build_encoders(settings.models)
        rerank_encoder = None if fill_later else rerank_encoder_of(settings)
        # the progress polls read while the worker writes: one call at a time on a store that asks for it
        jobs = IngestJobs(settings, store, dense, sparse, store_lock=threading.RLock(), rerank_encoder=rerank_encoder)
        submit = _refusals_as_usage(lambda: jobs.submit(folder, source, delete_missing))
        code = _run(submit, jobs.get, folder, settings, as_json, watch, bar)
        if not fill_later and not watch and code != ExitCode.INDEX_UNAVAILABLE:
            fill_outcome(follow_fill(jobs.fill_status, err, bar), err, as_json)
    finally:
        if jobs is not None:
            jobs.close()
        store.close()
    raise typer.Exit(code)


def _in_the_server(settings, holder, folder, source, delete_missing, as_json, watch, bar, api_key, fill_later) -> None:
    from cairn.commands.ingest_remote import RemoteError, RemoteJobs

    remote = RemoteJobs(holder.url or "", api_key, holder.pid)
    if not as_json:
        err.print(f"The index is held by {remote.where}: the job runs there.", highlight=False)
    try:
        code = _run(
            lambda: remote.submit_folder(folder, source, delete_missing),
            remote.status,
            folder,
            settings,
            as_json,
            watch,
            bar,
        )
        if not fill_later and not watch and code != ExitCode.INDEX_UNAVAILABLE:
            fill_outcome(follow_fill(remote.fill_status, err, bar), err, as_json)
    except RemoteError as exc:
        raise fail(str(exc), exc.code) from None
    finally:
        remote.close()
    raise typer.Exit(code)


def _refusals_as_usage(submit: Submit) -> Submit:
    def checked() -> IngestJobStatus:
        try:
            return submit()
        except (NotADirectoryError, ValueError) as exc:  # a vanished folder, a source that holds uploads
            raise fail(str(exc), ExitCode.USAGE) from None

    return checked


def _run(
    submit: Submit, status_of: StatusOf, folder: Path, settings: Settings, as_json: bool, watch: bool, bar: bool
) -> ExitCode:
    """The first sync; with ``watch``, one more after every burst of changes until Ctrl-C."""
    if not watch:
        return outcome(follow(submit(), status_of, err, bar), err, as_json)

    from ingest.watch import FolderWatcher

    changes: queue.Queue[IngestJobStatus | BaseException] = queue.Queue()

    def on_change() -> None:
        try:
            changes.put(submit())
        except BaseException as exc:  # e.g. the service went away: the main thread reports it
            changes.put(exc)

    # watching starts before the first sync: a change made while it runs gets a sync of its own
    with FolderWatcher(folder, on_change, settings.watch_debounce_s):
        first = follow(submit(), status_of, err, bar)
        code = outcome(first, err, as_json)
        if first.error is not None:
            return code
        followed = {first.id}
        if not as_json:
            err.print(f"Watching {folder} for changes (Ctrl-C stops).", highlight=False)
        try:
            while True:
                try:
                    item = changes.get(timeout=0.5)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if item.id in followed:  # a change folded into a job already shown
                    continue
                followed.add(item.id)
                outcome(follow(item, status_of, err, bar), err, as_json)
        except KeyboardInterrupt:
            if not as_json:
                err.print("Stopped watching.")
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)

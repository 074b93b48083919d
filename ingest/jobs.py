"""Ingest jobs in the process that holds the index: one at a time, in one worker thread, through
the same incremental pipeline as `cairn ingest`, while searches and answers go on in others.

A job is queued, runs, and ends done (every file looked at; some may have failed, each with its
reason) or failed (the job itself could not run: a missing folder, a bad ACL file, the index).
Submitting a folder that already waits in the queue returns the waiting job: a burst of changes
under a watched folder is one sync, not a queue of them. Closing the runner stops the running
job between two files; a stopped job leaves the index as a crash would, and the next run of its
folder converges on the index a clean run produces (the pipeline's own guarantee).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import BinaryIO, Literal, Sequence

from pydantic import BaseModel

from ingest.acl import AclError
from ingest.parser_pool import ParserPool
from ingest.pipeline import Failure, IngestPipeline, IngestReport
from ingest.rerank_fill import RerankVectorFill
from ingest.serialized_store import SerializedStore
from ingest.sources import SourceConflictError, SourceEntry, SourceRegistry, registry_path
from ingest.uploads import UploadFolders
from retrieval.encoders import DenseEncoder, SparseEncoder
from retrieval.index_schema import FileRecord, Filter, MatchAny, files_collection
from retrieval.settings import Settings
from retrieval.store import IncompatibleIndexError, IndexStore, StoreError

log = logging.getLogger("cairn.ingest.jobs")

JobKind = Literal["folder", "upload", "sync", "watch"]
_HISTORY = 200  # finished jobs kept for status queries
# The worker's CPU priority below the searches' (Linux nice, per thread; the model's compute
# threads it starts inherit it): on a few cores a long ingest or fill takes the idle time and
# leaves the questions theirs.
_WORKER_NICE = 10


class JobState(str, Enum):
    queued = "queued"
    running = "running"
    done = "done"  # every file looked at; `failures` names those that could not be indexed
    failed = "failed"  # the job could not run: `error` says why


class JobError(BaseModel):
    # folder: missing or not a folder; settings: a bad ACL file or an index built with another
    # model; index: the store failed; stopped: the service shut down mid-job; unexpected: a bug
    kind: Literal["folder", "settings", "index", "stopped", "unexpected"]
    message: str


class IngestJobStatus(BaseModel):
    id: str
    kind: JobKind  # why it was queued
    source: str
    root: str
    delete_missing: bool
    state: JobState
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    files_total: int | None = None  # supported files found in the folder (known once planned)
    files_to_index: int | None = None  # the new and changed ones among them
    files_done: int = 0  # indexed or failed so far, of files_to_index
    files_failed: int = 0
    chunks_written: int = 0
    files_per_s: float | None = None
    eta_s: float | None = None
    failures: list[Failure] = []  # every file that could not be indexed, once the job is done
    report: IngestReport | None = None
    error: JobError | None = None

    @property
    def finished(self) -> bool:
        return self.state in (JobState.done, JobState.failed)


class RerankFillStatus(BaseModel):
    """The background fill of the reranking model's vectors (see ingest/rerank_fill.py)."""

    # off: no embedding reranker; filling: chunks lack the vector (jobs go first); complete:
    # every chunk holds it; failed: the last attempt failed (`error`), the next job retries
    state: Literal["off", "filling", "complete", "failed"]
    model: str | None = None
    filled: int = 0
    chunks: int = 0
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state != "filling"


class DeletedDocument(BaseModel):
    doc_id: str
    source: str
    path: str
    chunks_deleted: int
    file_removed: bool  # the uploaded file was deleted too (documents of a folder stay in it)


class _Stopped(Exception):
    """Raised inside the pipeline's progress callback: the runner is closing."""


class _Tracker:
    """The pipeline's progress, written into the job's status; stops the run when asked."""

    def __init__(self, job: IngestJobStatus, lock: threading.Lock, stop: threading.Event) -> None:
        self.job, self.lock, self.stop = job, lock, stop
        self.planned_at: float | None = None

    def planned(self, files_to_parse: int, files_total: int) -> None:
        if self.stop.is_set():
            raise _Stopped
        with self.lock:
            self.job.files_total, self.job.files_to_index = files_total, files_to_parse
        self.planned_at = time.monotonic()

    def file_done(self, rel_path: str, chunks: int, failed: bool) -> None:
        with self.lock:
            job = self.job
            job.files_done += 1
            job.files_failed += failed
            job.chunks_written += chunks
            elapsed = time.monotonic() - (self.planned_at or time.monotonic())
            if elapsed > 0:
                job.files_per_s = round(job.files_done / elapsed, 3)
                left = max((job.files_to_index or 0) - job.files_done, 0)
                job.eta_s = round(left / job.files_per_s, 1) if job.files_per_s else None
        if self.stop.is_set():
            raise _Stopped


def _now() -> datetime:
    return datetime.now(tz=timezone.utc)


class IngestJobs:
    """The one writer of the index in a serving process (and in `cairn ingest` itself)."""

    def __init__(
        self,
        settings: Settings,
        store: IndexStore,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        store_lock: AbstractContextManager | None = None,
        parser_pool: ParserPool | None = None,
        rerank_encoder: DenseEncoder | None = None,
    ) -> None:
        """``store_lock``: held by searches around their reads when the store serves one request at
        a time; the runner's writes take it too, call by call. ``parser_pool``: shared (and closed)
        by its owner; by default the pipeline starts its own with the first job. ``rerank_encoder``:
        the embedding reranker's loaded model; when given, the worker fills its vectors into the
        index whenever no job waits (after each job, and from `fill_in_background`)."""
        if store_lock is not None and not store.concurrent_reads:
            store = SerializedStore(store, store_lock)  # type: ignore[assignment]
        self.settings = settings
        self.store = store
        self.collection = settings.collection
        self.records = files_collection(settings.collection)
        jobs = settings.jobs
        self.uploads = UploadFolders(jobs.upload_dir, jobs.acl_file_name, jobs.max_file_mb)
        self.sources = SourceRegistry(registry_path(settings.data_dir, settings.collection))
        self._make_pipeline = lambda: IngestPipeline(settings, self.store, dense, sparse, parser_pool=parser_pool)
        self._pipeline: IngestPipeline | None = None  # built by the first job: parser processes start then
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: OrderedDict[str, IngestJobStatus] = OrderedDict()
        self._queue: deque[str] = deque()
        self._running: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fill = (
            RerankVectorFill(self.store, self.collection, rerank_encoder, jobs.rerank_fill_batch)
            if rerank_encoder is not None
            else None
        )
        self._fill_due = False
        self._fill_error: str | None = None

    # --- submitting ----------------------------------------------------------------------
    def submit(
        self, root: Path, source: str | None = None, delete_missing: bool = True, kind: JobKind = "folder"
    ) -> IngestJobStatus:
        """Queue ``root`` (a folder); the job waiting for the same folder and source if there is one."""
        root = Path(root).expanduser().resolve()
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a folder: give the folder of documents to index")
        source = source or root.name
        self._check_source(source, root)
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the ingest runner is shutting down: submit the job again once the service is back")
            for job_id in self._queue:
                queued = self._jobs[job_id]
                if (queued.root, queued.source, queued.delete_missing) == (str(root), source, delete_missing):
                    return queued.model_copy(deep=True)
            job = IngestJobStatus(
                id=uuid.uuid4().hex[:12], kind=kind, source=source, root=str(root), delete_missing=delete_missing,
                state=JobState.queued, submitted_at=_now(),
            )  # fmt: skip
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._forget_old()
            self._start_worker()
            self._wake.notify_all()
            return job.model_copy(deep=True)

    def add_uploads(
        self, source: str, files: Sequence[tuple[str, BinaryIO]], groups: Sequence[str] | None = None
    ) -> IngestJobStatus:
        """Store uploaded files in the source's folder under CAIRN_UPLOAD_DIR and queue its sync.
        Every name is checked before anything is written."""
        if not files:
            from ingest.uploads import UploadError

            raise UploadError("no files in the upload: send one or more files")
        folder = self.uploads.folder(source)
        self._check_source(source, folder)
        for name, _ in files:
            self.uploads.check_name(name)
        folder = self.uploads.prepare(source, groups)
        for name, stream in files:
            self.uploads.save(folder, name, stream)
        return self.submit(folder, source, kind="upload")

    def sync(self, source: str | None = None) -> list[IngestJobStatus]:
        """Queue a sync of every known source (or of one): the folders jobs and uploads went to."""
        entries = self.sources.all()
        if source is not None:
            if source not in entries:
                raise KeyError(f"no source named '{source}' has been ingested by this service")
            entries = {source: entries[source]}
        return [self.submit(Path(e.root), e.name, kind="sync") for e in entries.values()]

    def _check_source(self, source: str, root: Path) -> None:
        """An upload must not take over a folder's source (its sync would remove the folder's
        documents), nor a folder an upload source."""
        entry = self.sources.get(source)
        into_uploads = root.is_relative_to(self.uploads.base.resolve())
        if entry is not None and entry.uploads != into_uploads:
            if entry.uploads:
                raise SourceConflictError(
                    f"source '{source}' holds uploaded files ({entry.root}): give the folder another source name"
                )
            raise SourceConflictError(
                f"source '{source}' is the folder {entry.root}: copy the files into it, or upload into another source"
            )
        if entry is None and into_uploads and self._has_documents(source):
            raise SourceConflictError(
                f"source '{source}' was ingested from a folder: uploading into it would remove that folder's "
                "documents from the index; upload into another source"
            )

    def _has_documents(self, source: str) -> bool:
        if not self.store.collection_exists(self.records):
            return False
        return self.store.count(self.records, Filter(must=(MatchAny("source", (source,)),))) > 0

    # --- the reranking model's vectors ----------------------------------------------------
    def fill_in_background(self) -> None:
        """Fill the chunks that lack the reranking model's vector, batch by batch, whenever no job
        waits (a serving process calls this at start; every job ends by asking for it too)."""
        if self._fill is None:
            return
        with self._lock:
            if self._stop.is_set():
                return
            self._fill_due, self._fill_error = True, None
            self._start_worker()
            self._wake.notify_all()

    def fill_status(self) -> RerankFillStatus:
        fill = self._fill
        if fill is None:
            return RerankFillStatus(state="off")
        with self._lock:
            due, error = self._fill_due, self._fill_error
        if not self.store.collection_exists(self.collection):
            return RerankFillStatus(state="complete", model=fill.model)
        progress = fill.progress()
        if error is not None and not due:
            state = "failed"
        else:
            state = "complete" if progress.complete else "filling"
        return RerankFillStatus(
            state=state, model=fill.model, filled=progress.filled, chunks=progress.chunks, error=error
        )

    def wait_fill(self, timeout: float | None = None) -> RerankFillStatus:
        """Until the fill is complete (or failed, or ``timeout``); a job queued meanwhile runs first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while (self._fill_due or self._queue or self._running) and not self._stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._wake.wait(left)
        return self.fill_status()

    def _fill_batch(self) -> None:
        """One batch: the worker comes back between two, so a job never waits behind a whole fill."""
        assert self._fill is not None
        done, error = False, None
        try:
            if not self.store.collection_exists(self.collection):
                done = True  # nothing indexed yet
            else:
                self._fill.prepare()  # every time: a reindex may have switched the alias to a new collection
                done = self._fill.step() == 0
        except Exception as exc:  # the index failed, the disk filled...: retried after the next job
            log.warning("filling the reranking vectors failed", exc_info=exc)
            done, error = True, f"{type(exc).__name__}: {exc}"
        with self._lock:
            if done:
                self._fill_due = False
            self._fill_error = error
            self._wake.notify_all()

    # --- reading -------------------------------------------------------------------------
    def get(self, job_id: str) -> IngestJobStatus | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.model_copy(deep=True) if job else None

    def jobs(self) -> list[IngestJobStatus]:
        """Newest first."""
        with self._lock:
            return [job.model_copy(deep=True) for job in reversed(self._jobs.values())]

    def wait(self, job_id: str, timeout: float | None = None) -> IngestJobStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._jobs[job_id].finished:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._wake.wait(left)
            return self._jobs[job_id].model_copy(deep=True)

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running is not None or bool(self._queue)

    def documents(self) -> list[FileRecord]:
        """Every indexed file with its groups: the administrator's view, no access filter."""
        if not self.store.collection_exists(self.records):
            return []
        records = [FileRecord.model_validate(p.payload) for p in self.store.scroll(self.records)]
        return sorted(records, key=lambda r: (r.source, r.path))

    # --- deleting ------------------------------------------------------------------------
    def delete_document(self, doc_id: str) -> DeletedDocument | None:
        """Remove a document's chunks and record (and its file, when it was uploaded); None when
        no such document is indexed. A document of a folder comes back if its file is still
        there at the folder's next sync."""
        if not self.store.collection_exists(self.records):
            return None
        found = self.store.retrieve(self.records, [doc_id])
        if not found:
            return None
        record = FileRecord.model_validate(found[0].payload)
        entry = self.sources.get(record.source)
        # the file first: a sync that starts now must not index it again
        file_removed = bool(entry and entry.uploads) and self.uploads.remove(record.source, record.path)
        doc = Filter(must=(MatchAny("doc_id", (doc_id,)),))
        chunks = self.store.count(self.collection, doc)
        self.store.delete(self.collection, doc)
        self.store.flush()
        self.store.delete_ids(self.records, [doc_id])  # the record last, as the pipeline does
        self.store.flush()
        with self._lock:
            running = self._jobs.get(self._running) if self._running else None
        if file_removed and running is not None and running.source == record.source:
            # the running job may have read the file before it went: a sync after it removes it
            self.submit(Path(entry.root), record.source, kind="sync")
        return DeletedDocument(
            doc_id=doc_id, source=record.source, path=record.path, chunks_deleted=chunks, file_removed=file_removed
        )

    # --- the worker ----------------------------------------------------------------------
    def _start_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="cairn-ingest-jobs", daemon=True)
            self._thread.start()

    def _forget_old(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in finished[: max(len(finished) - _HISTORY, 0)]:
            del self._jobs[job_id]

    def _work(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _WORKER_NICE)
        except (AttributeError, OSError):  # not Linux, or not allowed: the same priority then
            pass
        while True:
            with self._lock:
                while not self._queue and not self._stop.is_set() and not self._fill_due:
                    self._wake.wait()
                if self._stop.is_set():
                    return
                job = None
                if self._queue:  # jobs first; the fill goes on between them
                    job_id = self._queue.popleft()
                    self._running = job_id
                    job = self._jobs[job_id]
                    job.state, job.started_at = JobState.running, _now()
            if job is None:
                self._fill_batch()
                continue
            try:
                report, error = self._run(job), None
            except BaseException as exc:  # the worker must outlive any job
                report, error = None, self._error_of(exc)
            with self._lock:
                job.finished_at = _now()
                job.eta_s = None if error else 0.0
                if report is not None:
                    job.state, job.report, job.failures = JobState.done, report, report.failures
                else:
                    job.state, job.error = JobState.failed, error
                self._running = None
                if self._fill is not None:  # the job's new chunks lack the reranking vectors
                    self._fill_due, self._fill_error = True, None
                self._wake.notify_all()

    def _run(self, job: IngestJobStatus) -> IngestReport:
        root = Path(job.root)
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is no longer a folder: it was moved or deleted")
        if self._pipeline is None:
            self._pipeline = self._make_pipeline()
        tracker = _Tracker(job, self._lock, self._stop)
        report = self._pipeline.run(root, source=job.source, delete_missing=job.delete_missing, progress=tracker)
        self.sources.put(
            SourceEntry(
                name=job.source, root=str(root), uploads=root.is_relative_to(self.uploads.base.resolve()),
                synced_at=_now().isoformat(), failures=report.failures,
            )
        )  # fmt: skip
        return report

    @staticmethod
    def _error_of(exc: BaseException) -> JobError:
        if isinstance(exc, _Stopped):
            return JobError(kind="stopped", message="the service shut down mid-job; run it again to finish")
        if isinstance(exc, NotADirectoryError):
            return JobError(kind="folder", message=str(exc))
        if isinstance(exc, (AclError, IncompatibleIndexError)):
            return JobError(kind="settings", message=str(exc))
        if isinstance(exc, StoreError):
            return JobError(kind="index", message=str(exc))
        log.exception("ingest job failed", exc_info=exc)
        return JobError(kind="unexpected", message=f"{type(exc).__name__}: {exc}")

    def close(self, timeout: float = 60.0) -> None:
        """Stop the running job between two files, fail the queued ones, stop the parsers."""
        with self._lock:
            self._stop.set()
            for job_id in self._queue:
                job = self._jobs[job_id]
                job.state, job.finished_at = JobState.failed, _now()
                job.error = JobError(kind="stopped", message="the service shut down before the job started")
            self._queue.clear()
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pipeline is not None:
            self._pipeline.close()

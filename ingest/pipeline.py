"""Incremental, crash-safe ingestion of one folder (a "source") into the index.

Re-ingestion policy, per file, decided from the file records of the source:
- access groups first: an indexed file whose groups under cairn-acl.yaml changed is re-labelled
  in place before anything else, whether its content changed or not;
- same content hash and same ingest fingerprint: skipped without parsing;
- new or changed: parsed, chunked, encoded; its new chunks are written, then its stale chunks
  deleted, and only then its file record (the marker of success) is written;
- gone from the folder: its chunks and record are removed (unless ``delete_missing=False``);
- failed (refused, empty, too large, unreadable, unparsable, timed out): reported with a plain
  reason, and whatever was indexed for it before is withdrawn from search, since it may carry
  content or groups the folder no longer vouches for.

Chunk ids are deterministic, so a run killed at any moment and run again converges on
exactly the index a clean run produces.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from ingest.acl import AccessRules
from ingest.chunking import Chunk, Chunker
from ingest.discovery import DISAPPEARED, FoundFile, discover
from ingest.parser_pool import ParseJob, ParserPool
from retrieval.encoders import DenseEncoder, SparseEncoder
from retrieval.hashing import sha256_of_stream
from retrieval.index_schema import (
    ChunkPayload,
    ChunkPoint,
    FileRecord,
    Filter,
    MatchAny,
    files_collection,
    make_chunk_id,
    make_doc_id,
    parent_dirs,
)
from retrieval.settings import Settings
from retrieval.store import IndexStore, StoreError, check_dense_size


class FileCounts(BaseModel):
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    relabelled: int = 0


class ChunkCounts(BaseModel):
    written: int = 0
    deleted: int = 0
    total: int = 0


class Failure(BaseModel):
    path: str
    error: str


class IngestReport(BaseModel):
    root: str
    source: str
    collection: str
    files: FileCounts
    chunks: ChunkCounts
    failures: list[Failure]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failures


class IngestProgress(Protocol):
    """What a front end (the CLI's progress bar) is told while a run goes on."""

    def planned(self, files_to_parse: int, files_total: int) -> None: ...

    def file_done(self, rel_path: str, chunks: int, failed: bool) -> None: ...


class _Silent:
    def planned(self, files_to_parse: int, files_total: int) -> None:
        pass

    def file_done(self, rel_path: str, chunks: int, failed: bool) -> None:
        pass


@dataclass
class _Pending:
    """A parsed file whose chunks are being written; finalised once all are stored."""

    found: FoundFile
    doc_id: str
    content_hash: str
    title: str
    groups: list[str]
    is_new: bool
    chunk_ids: list[str] = field(default_factory=list)
    total: int = 0  # chunks the file produced
    remaining: int = 0


def file_hash(path: Path) -> str:
    # O_NOFOLLOW: a file swapped for a link since discovery is refused, not read through the link
    with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as handle:
        return sha256_of_stream(handle)


EMPTY = "empty file (0 bytes): nothing to index; save it again with its content, or remove it"


def _changed_since(item: FoundFile) -> str | None:
    """Why a file just parsed must not be indexed as it was read: it moved or changed meanwhile."""
    try:
        now = os.stat(item.path, follow_symlinks=False)
    except FileNotFoundError:
        return DISAPPEARED
    except OSError:
        return None  # readable a moment ago; the parse result stands
    if (now.st_size, now.st_mtime) != (item.size, item.mtime):
        return (
            "the file changed while it was being read (its size or modification time moved), so what was read may "
            "be half-written and was not indexed; run the ingest again once nothing is writing to it"
        )
    return None


class IndexFullError(StoreError):
    """The disk holding the index is (nearly) full: the run stopped; what it had indexed is kept."""


# The embedded engine writes through memory maps: a write to a mapped page the disk has no room
# for kills the process (SIGBUS) instead of failing. Its files fill in steps of up to 32 MB (a
# vector chunk, a WAL segment, a payload page), several at a time, so a run stops while 256 MB
# is still free.
MIN_FREE_MB = 256


def _index_full(where: str, what: str) -> str:
    return (
        f"the disk holding the index ({where}) is full: {what}. The run stopped; files indexed so far are kept. "
        "Free space on that disk (or move the index to a larger one), then run the ingest again: it goes on "
        "where it stopped"
    )


def fingerprint_of(settings: Settings) -> str:
    blob = json.dumps(settings.ingest_fingerprint(), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class IngestPipeline:
    def __init__(
        self,
        settings: Settings,
        store: IndexStore,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        parser_pool: ParserPool | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dense = dense
        self.sparse = sparse
        self.collection = settings.collection
        self.records = files_collection(settings.collection)
        self.fingerprint = fingerprint_of(settings)
        self.chunker = Chunker(
            tokenize=lambda text: dense.tokenizer.encode(text, add_special_tokens=False),
            chunk_tokens=settings.chunk_tokens,
            overlap=settings.chunk_overlap,
            max_seq_length=dense.max_seq_length,
        )
        # a pool passed in is shared (and closed) by its owner
        self._owns_pool = parser_pool is None
        self.parser_pool = parser_pool or ParserPool(
            settings.parse_workers, settings.parse_timeout_s, memory_mb=settings.parse_memory_mb
        )
        self.write_batch = settings.ingest_write_batch

    def close(self) -> None:
        """Stop the parser processes (they are kept between runs)."""
        if self._owns_pool:
            self.parser_pool.close()

    # --- the run ---------------------------------------------------------------------
    def run(
        self,
        root: Path,
        source: str | None = None,
        delete_missing: bool = True,
        progress: IngestProgress | None = None,
    ) -> IngestReport:
        started = time.monotonic()
        root = Path(root).resolve()
        source = source or root.name
        progress = progress or _Silent()
        self._check_space()
        self._ensure_collections()

        rules = AccessRules.for_root(root, self.settings.acl_file_name)
        found, rejected = discover(root, skip_names=frozenset({self.settings.acl_file_name}))
        files = FileCounts()
        chunks = ChunkCounts()
        failures: list[Failure] = []
        known = {r.path: r for r in self._records(source)}

        def fail(rel_path: str, error: str, folder: bool = False) -> None:
            chunks.deleted += self._withdraw(rel_path, error, folder, known, failures)

        for refused in rejected:
            fail(refused.rel_path, refused.reason, refused.folder)

        to_parse: list[tuple[FoundFile, str]] = []
        max_bytes = self.settings.max_file_mb * 1024 * 1024
        for item in found:
            if item.size == 0:
                fail(item.rel_path, EMPTY)
                continue
            if item.size > max_bytes:
                limit = f"{self.settings.max_file_mb:g} MB limit (CAIRN_MAX_FILE_MB)"
                fail(item.rel_path, f"file is {item.size / 1e6:.1f} MB, over the {limit}: split it, or raise the limit")
                continue
            try:
                digest = file_hash(item.path)
            except FileNotFoundError:
                fail(item.rel_path, DISAPPEARED)
                continue
            except OSError as exc:
                fail(item.rel_path, f"cannot read the file: {exc.strerror}; check its permissions")
                continue
            record = known.get(item.rel_path)
            unchanged = bool(record and record.content_hash == digest and record.fingerprint == self.fingerprint)
            groups = rules.groups_for(item.rel_path)
            if record and sorted(record.groups) != groups:
                known[item.rel_path] = self._relabel(record, groups)
                if unchanged:  # a changed file is counted as updated
                    files.relabelled += 1
            if unchanged:
                files.unchanged += 1
            else:
                to_parse.append((item, digest))

        progress.planned(len(to_parse), len(found))
        by_path = {item.rel_path: (item, digest) for item, digest in to_parse}
        jobs = [ParseJob(item.rel_path, str(item.path), item.file_type) for item, _ in to_parse]
        batch: list[tuple[_Pending, Chunk]] = []
        for outcome in self.parser_pool.parse(jobs):
            item, digest = by_path[outcome.job.key]
            error = outcome.error if outcome.error is not None else _changed_since(item)
            if error is not None:
                fail(item.rel_path, error)
                progress.file_done(item.rel_path, 0, failed=True)
                continue
            document = outcome.document
            doc_chunks = self.chunker.chunk(document)
            if not doc_chunks:
                fail(item.rel_path, "no text could be extracted")
                progress.file_done(item.rel_path, 0, failed=True)
                continue
            pending = _Pending(
                found=item,
                doc_id=make_doc_id(source, item.rel_path),
                content_hash=digest,
                title=document.title,
                groups=rules.groups_for(item.rel_path),
                is_new=item.rel_path not in known,
                total=len(doc_chunks),
                remaining=len(doc_chunks),
            )
            batch.extend((pending, chunk) for chunk in doc_chunks)
            if len(batch) >= self.write_batch:
                chunks.written += self._write(batch, source, files, chunks, progress)
                batch = []
        if batch:
            chunks.written += self._write(batch, source, files, chunks, progress)

        if delete_missing:
            present = {item.rel_path for item in found} | {r.rel_path for r in rejected}
            for path, record in known.items():
                if path not in present:
                    chunks.deleted += self._remove(record)
                    files.deleted += 1

        self.store.flush()
        files.failed = len(failures)
        chunks.total = self.store.count(self.collection)
        return IngestReport(
            root=str(root),
            source=source,
            collection=self.collection,
            files=files,
            chunks=chunks,
            failures=sorted(failures, key=lambda f: f.path),
            seconds=round(time.monotonic() - started, 2),
        )

    # --- steps -----------------------------------------------------------------------
    def _check_space(self) -> None:
        data_dir = getattr(self.store, "data_dir", None)  # the embedded engine's folder
        if data_dir is None:
            return
        free_mb = shutil.disk_usage(data_dir).free / (1024 * 1024)
        if free_mb < MIN_FREE_MB:
            what = f"{free_mb:.0f} MB free, under the {MIN_FREE_MB} MB a run keeps free"
            raise IndexFullError(_index_full(str(data_dir), what))

    def _ensure_collections(self) -> None:
        check_dense_size(self.store, self.collection, self.dense.model_name, self.dense.dimension)
        if not self.store.collection_exists(self.collection):
            self.store.create_chunk_collection(self.collection, self.dense.dimension)
        if not self.store.collection_exists(self.records):
            self.store.create_record_collection(self.records)

    def _records(self, source: str) -> list[FileRecord]:
        points = self.store.scroll(self.records, Filter(must=(MatchAny("source", (source,)),)))
        return [FileRecord.model_validate(p.payload) for p in points]

    def _write(self, batch, source: str, files: FileCounts, chunks: ChunkCounts, progress: IngestProgress) -> int:
        texts = [chunk.embed_text for _, chunk in batch]
        dense = self.dense.encode_documents(texts)
        sparse = self.sparse.encode_documents(texts)
        points = []
        for (pending, chunk), dense_vec, sparse_vec in zip(batch, dense, sparse):
            point_id = make_chunk_id(pending.doc_id, f"{pending.content_hash}:{self.fingerprint}", chunk.index)
            pending.chunk_ids.append(point_id)
            points.append(ChunkPoint(id=point_id, dense=dense_vec.tolist(), sparse=sparse_vec, payload=self._payload(pending, chunk, source)))
        self._check_space()
        try:
            self.store.upsert_chunks(self.collection, points)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            where = str(getattr(self.store, "data_dir", None) or f"collection {self.collection}")
            raise IndexFullError(_index_full(where, f"a write failed ({exc.strerror})")) from exc
        self.store.flush()  # the chunks are durable before any marker says so

        written_per_file = Counter(id(p) for p, _ in batch)
        for pending in {id(p): p for p, _ in batch}.values():
            pending.remaining -= written_per_file[id(pending)]
            if pending.remaining == 0:
                chunks.deleted += self._finalise(pending, source)
                if pending.is_new:
                    files.added += 1
                else:
                    files.updated += 1
                progress.file_done(pending.found.rel_path, len(pending.chunk_ids), failed=False)
        return len(points)

    def _payload(self, pending: _Pending, chunk: Chunk, source: str) -> dict:
        modified = datetime.fromtimestamp(pending.found.mtime, tz=timezone.utc)
        return ChunkPayload(
            doc_id=pending.doc_id,
            source=source,
            path=pending.found.rel_path,
            title=pending.title,
            section=chunk.section,
            page=chunk.page,
            chunk_index=chunk.index,
            doc_chunks=pending.total,
            text=chunk.text,
            content_hash=pending.content_hash,
            file_type=pending.found.file_type,
            modified=modified.isoformat(),
            modified_ts=pending.found.mtime,
            groups=pending.groups,
            dirs=parent_dirs(pending.found.rel_path),
        ).model_dump()

    def _finalise(self, pending: _Pending, source: str) -> int:
        """Delete the file's stale chunks, then write its record: the marker of success."""
        doc = Filter(must=(MatchAny("doc_id", (pending.doc_id,)),))
        current = set(pending.chunk_ids)
        stale = [p.id for p in self.store.scroll(self.collection, doc, fields=["chunk_index"]) if p.id not in current]
        self.store.delete_ids(self.collection, stale)
        self.store.flush()
        record = FileRecord(
            doc_id=pending.doc_id,
            source=source,
            path=pending.found.rel_path,
            title=pending.title,
            content_hash=pending.content_hash,
            file_type=pending.found.file_type,
            modified=datetime.fromtimestamp(pending.found.mtime, tz=timezone.utc).isoformat(),
            groups=pending.groups,
            chunk_count=len(pending.chunk_ids),
            fingerprint=self.fingerprint,
            indexed_at=datetime.now(tz=timezone.utc).isoformat(),
        )
        self.store.upsert_records(self.records, [(pending.doc_id, record.model_dump())])
        self.store.flush()
        return len(stale)

    def _relabel(self, record: FileRecord, groups: list[str]) -> FileRecord:
        """New access groups without re-embedding: chunks first, then the record."""
        self.store.set_payload(self.collection, {"groups": groups}, Filter(must=(MatchAny("doc_id", (record.doc_id,)),)))
        self.store.flush()
        relabelled = record.model_copy(update={"groups": groups})
        self.store.upsert_records(self.records, [(record.doc_id, relabelled.model_dump())])
        return relabelled

    def _withdraw(
        self, rel_path: str, error: str, folder: bool, known: dict[str, FileRecord], failures: list[Failure]
    ) -> int:
        """Report a failed file (or folder) and take what was indexed for it (or in it) out of search."""
        if folder:
            stale = [path for path in known if path.startswith(rel_path.rstrip("/") + "/")]
        else:
            stale = [rel_path] if rel_path in known else []
        removed = sum(self._remove(known.pop(path)) for path in stale)
        if stale:
            error += f"; its earlier version ({removed} chunks) was removed from search until it is indexed again"
        failures.append(Failure(path=rel_path, error=error))
        return removed

    def _remove(self, record: FileRecord) -> int:
        doc = Filter(must=(MatchAny("doc_id", (record.doc_id,)),))
        count = self.store.count(self.collection, doc)
        self.store.delete(self.collection, doc)
        self.store.flush()
        self.store.delete_ids(self.records, [record.doc_id])
        return count

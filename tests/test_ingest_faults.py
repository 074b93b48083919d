"""The index's disk fills up during an ingest: the run stops with its reason (never a crash), what
was indexed is kept, and a re-run once there is space completes into the index a clean run makes.

A real full disk (a small tmpfs, where this runs as root) for the embedded engine, and a write
that fails for space (injected at the store's boundary) on both backends. A process killed
during a run is tests/test_ingest_crash.py's subject (kill -9 at two points, then a re-run equals
a clean run, both backends).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from fixtures_ingest import REPO, Ingester, open_backend

from ingest.pipeline import MIN_FREE_MB, IndexFullError
from retrieval.index_schema import files_collection

MB = 1024 * 1024


def make_corpus(root: Path, first: int, count: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        sections = "\n\n".join(
            f"## Part {j}\n\n" + " ".join(f"Rule {i} clause {j} line {k} sets limit {i * j + k}." for k in range(12))
            for j in range(3)
        )
        (root / f"rule-{i:03}.md").write_text(f"# Rule {i}\n\n{sections}\n")
    return root


def snapshot(store, collection: str = "docs") -> tuple[dict, dict]:
    """Chunks and file records by id (without the time a record was written)."""
    chunks = {p.id: p.payload for p in store.scroll(collection)}
    records = {
        p.id: {k: v for k, v in p.payload.items() if k != "indexed_at"}
        for p in store.scroll(files_collection(collection))
    }
    return chunks, records


def assert_kept(before: tuple[dict, dict], after: tuple[dict, dict]) -> None:
    """Every chunk and record of ``before`` is in ``after``, unchanged."""
    for kept, now in zip(before, after):
        assert kept, "nothing was indexed before"
        assert {i: now.get(i) for i in kept} == kept


def clean_run(kind: str, folder: Path, data_dir: Path, encoders, parser_pool) -> tuple[dict, dict]:
    ingester = Ingester(kind, data_dir, encoders, parser_pool=parser_pool)
    try:
        report = ingester.run(folder)
        assert report.ok, report.failures
        return snapshot(ingester.store)
    finally:
        ingester.close()


# --- a write that fails for space, injected at the store, both backends -----------------------
@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_write_failing_for_space_stops_the_run_and_a_rerun_completes(
    kind, tmp_path, encoders, parser_pool, monkeypatch
):
    folder = make_corpus(tmp_path / "docs", 0, 4)
    ingester = Ingester(kind, tmp_path / "index", encoders, parser_pool=parser_pool)
    try:
        assert ingester.run(folder).ok
        first = snapshot(ingester.store)

        make_corpus(folder, 4, 8)  # 8 more files, 3 chunks each
        ingester.pipeline.write_batch = 4
        upsert, written = ingester.store.upsert_chunks, []

        def upsert_until_full(collection, points):
            if len(written) + len(points) > 12:  # batches of 6 chunks (2 files): the third one fails
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            upsert(collection, points)
            written.extend(points)

        monkeypatch.setattr(ingester.store, "upsert_chunks", upsert_until_full)
        with pytest.raises(
            IndexFullError,
            match=r"is full: a write failed \(No space left on device\).*indexed so far are kept.*run the ingest again",
        ):
            ingester.run(folder)
        stopped = snapshot(ingester.store)
        assert_kept(first, stopped)
        _records_mark_complete_files(stopped)
        assert len(stopped[1]) > len(first[1])  # files finished before the disk filled stay indexed

        monkeypatch.undo()  # space again
        report = ingester.run(folder)
        assert report.ok and report.files.unchanged == len(stopped[1])
        assert report.files.added == 12 - len(stopped[1])
        final = snapshot(ingester.store)
    finally:
        ingester.close()
    assert_kept(first, final)
    assert final == clean_run(kind, folder, tmp_path / "clean", encoders, parser_pool)


def _records_mark_complete_files(state: tuple[dict, dict]) -> None:
    """A file record is written after all of the file's chunks: each one's chunks are all there."""
    chunks, records = state
    for record in records.values():
        held = [c for c in chunks.values() if c["doc_id"] == record["doc_id"]]
        assert len(held) == record["chunk_count"], record["path"]


# --- a real full disk under the embedded engine ------------------------------------------------
# Runs the pipeline in a child process: a regression here (a write into a full disk) would kill
# it with SIGBUS, which must not take the test session down with it.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, "tests")
    from fixtures_ingest import Ingester
    from ingest.pipeline import IndexFullError
    from retrieval.encoders import DenseEncoder, SparseEncoder
    from retrieval.settings import DEFAULT_EMBEDDING_MODEL

    data_dir, folder = sys.argv[1:3]
    encoders = (DenseEncoder(DEFAULT_EMBEDDING_MODEL), SparseEncoder())
    ingester = Ingester("edge", Path(data_dir), encoders, ingest_write_batch=6)
    try:
        report = ingester.run(Path(folder))
        print("added", report.files.added, "failed", report.files.failed, flush=True)
    except IndexFullError as exc:
        print("FULL", exc, flush=True)
        sys.exit(3)
    finally:
        ingester.close()
    """
)


def run_child(data_dir: Path, folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(data_dir), str(folder)], cwd=REPO, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs a little larger than the space a run keeps free (it takes memory only as it is
    written: the index and the ballast, ~150 MB), unmounted afterwards; needs root."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    size = f"size={MIN_FREE_MB + 160}m"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_mb: float) -> Path:
    """A ballast file that leaves ``leave_mb`` free on ``disk``."""
    ballast = disk / f"ballast-{uuid.uuid4().hex}"
    size = shutil.disk_usage(disk).free - int(leave_mb * MB)
    with ballast.open("wb") as handle:
        block = b"\0" * MB
        for _ in range(size // MB):
            handle.write(block)
        handle.write(b"\0" * (size % MB))
    return ballast


def test_the_disk_filling_during_a_run_stops_it_cleanly_and_a_rerun_completes(
    small_disk, tmp_path, encoders, parser_pool
):
    index, folder = small_disk / "index", make_corpus(tmp_path / "docs", 0, 6)
    done = run_child(index, folder)
    assert done.returncode == 0, done.stderr[-2000:]
    store = open_backend("edge", index)
    first = snapshot(store)
    store.close()

    make_corpus(folder, 6, 20)  # 60 more chunks: more than the engine can have
    ballast = fill(small_disk, MIN_FREE_MB + 0.25)
    done = run_child(index, folder)
    assert done.returncode == 3, f"rc={done.returncode} (-7: killed by SIGBUS)\n{done.stdout}\n{done.stderr[-2000:]}"
    assert "the disk holding the index" in done.stdout and f"under the {MIN_FREE_MB} MB a run keeps free" in done.stdout
    assert "Free space on that disk" in done.stdout
    store = open_backend("edge", index)
    stopped = snapshot(store)
    store.close()
    assert_kept(first, stopped)
    _records_mark_complete_files(stopped)

    ballast.unlink()  # space again
    done = run_child(index, folder)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"added {26 - len(stopped[1])} failed 0" in done.stdout
    store = open_backend("edge", index)
    final = snapshot(store)
    store.close()
    assert_kept(first, final)
    assert final == clean_run("edge", folder, tmp_path / "clean", encoders, parser_pool)


def test_a_run_on_a_full_disk_is_refused_before_it_writes(small_disk, tmp_path):
    """Before the free-space check, the embedded engine died of SIGBUS on its first write (rc -7)."""
    folder = make_corpus(tmp_path / "docs", 0, 2)
    fill(small_disk, 1)
    done = run_child(small_disk / "index", folder)
    assert done.returncode == 3, f"rc={done.returncode}\n{done.stderr[-2000:]}"
    assert "is full: 1 MB free" in done.stdout


# --- a parser process that dies, or cannot start -------------------------------------------------
def test_a_parser_killed_mid_file_is_reported_and_the_run_goes_on(tmp_path, encoders):
    """What the kernel's OOM killer does: the file is reported with the signal, the next one parsed."""
    import signal
    import threading

    from ingest.parser_pool import ParserPool

    root = tmp_path / "docs"
    root.mkdir()
    (root / "a-slow.txt").write_text("word " * 200_000)  # minutes of the text partitioner's sentence model
    (root / "b-good.md").write_text("# Lockers\n\nLockers are emptied every Friday evening.\n")
    with ParserPool(workers=1, timeout_s=120) as pool:
        ingester = Ingester("edge", tmp_path / "index", encoders, pool)

        def kill_when_busy():
            deadline = time.monotonic() + 120
            while "a-slow.txt" not in pool.busy.values() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            for pid, key in pool.busy.items():
                if key == "a-slow.txt":
                    os.kill(pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        try:
            report = ingester.run(root)
        finally:
            killer.join()
            ingester.close()
    failed = {f.path: f.error for f in report.failures}
    assert list(failed) == ["a-slow.txt"]
    assert "the parser process died while reading this file (killed by SIGKILL)" in failed["a-slow.txt"]
    assert "split it, or raise CAIRN_PARSE_MEMORY_MB" not in failed["a-slow.txt"]  # no limit was set
    assert report.files.added == 1


def test_a_parser_pool_that_cannot_start_a_worker_raises(tmp_path, monkeypatch):
    """Before, the pool's thread died and the run ended as if every file had been parsed."""
    from ingest import parser_pool
    from ingest.parser_pool import ParseJob, ParserPool

    def no_process(self, context, memory_mb):
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(parser_pool._Worker, "__init__", no_process)
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    with ParserPool(workers=1, timeout_s=10) as pool:
        with pytest.raises(OSError, match="Resource temporarily unavailable"):
            list(pool.parse([ParseJob("a.md", str(tmp_path / "a.md"), "md")]))

"""Watching a folder keeps the index in sync: files created, edited, renamed and deleted are
followed within the debounce plus one ingest; a watcher killed mid-job and restarted leaves
the index a clean run produces. Both backends; and `cairn ingest --watch` as a user runs it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fixtures_ingest import Ingester
from fixtures_live import indexed_paths, live_runtime, policy_text, wait_for, write_policies

from ingest.watch import FolderWatcher
from retrieval.access import Identity
from retrieval.search_schemas import SearchRequest

REPO = Path(__file__).resolve().parent.parent
DEBOUNCE_S = 0.5
ONE_INGEST_S = 120  # generous on 2 busy cores; a small change usually lands in 2-5 s


@pytest.fixture(params=["edge", "server"])
def kind(request) -> str:
    return request.param


def test_a_burst_of_changes_is_one_sync_and_hidden_files_are_ignored(tmp_path):
    calls: list[float] = []
    with FolderWatcher(tmp_path, lambda: calls.append(time.monotonic()), debounce_s=0.4):
        (tmp_path / ".swap.md").write_text("editor scratch")
        (tmp_path / ".hidden").mkdir()
        (tmp_path / ".hidden" / "a.md").write_text("x")
        time.sleep(1.0)
        assert calls == []  # hidden paths never trigger a sync
        started = time.monotonic()
        for i in range(5):
            (tmp_path / f"f{i}.md").write_text(str(i))
            time.sleep(0.1)
        wait_for(lambda: calls, 5, every=0.05, what="a sync after the burst")
        time.sleep(1.0)
        assert len(calls) == 1 and calls[0] - started >= 0.4 + 0.4  # after the last change, not the first
        (tmp_path / "f0.md").read_text()  # reading is no change
        time.sleep(1.0)
        assert len(calls) == 1


def test_a_burst_that_never_pauses_is_synced_by_max_wait(tmp_path):
    calls: list[float] = []
    with FolderWatcher(tmp_path, lambda: calls.append(time.monotonic()), debounce_s=0.5, max_wait_s=1.5):
        deadline = time.monotonic() + 3.0
        i = 0
        while time.monotonic() < deadline:
            (tmp_path / f"f{i % 3}.md").write_text(str(i))
            i += 1
            time.sleep(0.1)
        assert len(calls) >= 1


def test_the_index_follows_create_edit_rename_and_delete(tmp_path, encoders, parser_pool, kind):
    runtime = live_runtime(kind, tmp_path, encoders, parser_pool, watch_debounce_s=DEBOUNCE_S)
    folder = tmp_path / "docs" / "watched"
    write_policies(folder, 2)
    public = Identity("anonymous", ("public",))

    def top(query: str) -> str | None:
        hits = runtime.search.search(SearchRequest(query=query, top_k=3, rerank=False), public).hits
        return hits[0].path if hits else None

    def follows(expected: set[str], what: str) -> float:
        started = time.monotonic()
        wait_for(lambda: indexed_paths(runtime, "watched") == expected and not runtime.ingest_jobs.busy,
                 DEBOUNCE_S + ONE_INGEST_S, what=what)  # fmt: skip
        return time.monotonic() - started

    try:
        runtime.watch([folder])
        follows({"policy-00.md", "policy-01.md"}, "the first sync")

        (folder / "policy-02.md").write_text(policy_text(2))  # create
        follows({"policy-00.md", "policy-01.md", "policy-02.md"}, "a new file indexed")
        assert top("rules on the orchid") == "policy-02.md"

        (folder / "policy-02.md").write_text("# Kiwi\n\nThe kiwi rule replaces the old text entirely.\n")  # edit
        wait_for(lambda: top("the kiwi rule") == "policy-02.md" and not runtime.ingest_jobs.busy,
                 DEBOUNCE_S + ONE_INGEST_S, what="an edit indexed")  # fmt: skip
        assert top("rules on the orchid") != "policy-02.md"

        (folder / "policy-02.md").rename(folder / "kiwi.md")  # rename
        follows({"policy-00.md", "policy-01.md", "kiwi.md"}, "a rename followed")
        assert top("the kiwi rule") == "kiwi.md"

        (folder / "kiwi.md").unlink()  # delete: stops being found within seconds
        took = follows({"policy-00.md", "policy-01.md"}, "a delete followed")
        assert top("the kiwi rule") != "kiwi.md"
        assert took < DEBOUNCE_S + 30, f"a deleted file was still found {took:.1f} s later"

        sub = folder / "sub"
        sub.mkdir()
        (sub / "nested.md").write_text(policy_text(5))  # a new folder with a file in it
        follows({"policy-00.md", "policy-01.md", "sub/nested.md"}, "a file in a new folder indexed")
        (folder / "sub").rename(folder / "moved")  # a folder moved
        follows({"policy-00.md", "policy-01.md", "moved/nested.md"}, "a moved folder followed")
    finally:
        runtime.close()


def test_the_service_watches_its_configured_sources(tmp_path, encoders, parser_pool):
    """CAIRN_WATCH_SOURCES, as `cairn serve` starts them (runtime.watch with no folders given)."""
    handbook, other = tmp_path / "docs" / "handbook", tmp_path / "elsewhere" / "handbook"
    write_policies(handbook, 1)
    other.mkdir(parents=True)
    runtime = live_runtime(
        "edge", tmp_path, encoders, parser_pool, watch_sources=[handbook], watch_debounce_s=DEBOUNCE_S
    )
    try:
        with pytest.raises(ValueError, match="share the name"):
            runtime.watch([handbook, other])
        with pytest.raises(NotADirectoryError):
            runtime.watch([tmp_path / "missing"])
        runtime.watch()
        wait_for(lambda: indexed_paths(runtime, "handbook") == {"policy-00.md"}, ONE_INGEST_S, what="the first sync")
        (handbook / "policy-01.md").write_text(policy_text(1))
        wait_for(lambda: indexed_paths(runtime, "handbook") == {"policy-00.md", "policy-01.md"},
                 DEBOUNCE_S + ONE_INGEST_S, what="a new file indexed")  # fmt: skip
        assert {j.kind for j in runtime.ingest_jobs.jobs()} == {"watch"}
    finally:
        runtime.close()


# --- kill -9 the watcher mid-job, restart: the index equals a clean run --------------------------

# A watcher over a folder, as `cairn serve` or `cairn ingest --watch` runs it, in a child process
# that prints the job's progress; kind/data_dir/folder come from argv.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, "tests")
    from fixtures_ingest import Ingester
    from ingest.jobs import IngestJobs
    from ingest.watch import FolderWatcher
    from retrieval.encoders import DenseEncoder, SparseEncoder
    from retrieval.settings import DEFAULT_EMBEDDING_MODEL

    if __name__ == "__main__":
        kind, data_dir, folder = sys.argv[1:4]
        encoders = (DenseEncoder(DEFAULT_EMBEDDING_MODEL), SparseEncoder())
        ingester = Ingester(kind, Path(data_dir), encoders, ingest_write_batch=4)
        ingester.pipeline.close()
        jobs = IngestJobs(ingester.settings, ingester.store, *encoders)
        last = None
        with FolderWatcher(Path(folder), lambda: jobs.submit(Path(folder)), debounce_s=0.3):
            jobs.submit(Path(folder))
            while True:
                for job in jobs.jobs():
                    line = f"{job.id} {job.state.value} {job.files_done}"
                    if job.state.value == "running" and line != last:
                        print(line, flush=True)
                        last = line
                if jobs.jobs() and all(j.finished for j in jobs.jobs()) and last != "idle":
                    print("idle", len(jobs.jobs()), flush=True)
                    last = "idle"
                time.sleep(0.02)
    """
)


def _start_child(kind: str, data_dir: Path, folder: Path) -> tuple[subprocess.Popen, queue.Queue]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(data_dir), str(folder)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in child.stdout], daemon=True).start()
    return child, lines


def _next_line(lines: queue.Queue, matches, timeout: float = 300) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        if matches(line):
            return line


def _snapshot(ingester: Ingester) -> tuple[dict, dict]:
    from retrieval.index_schema import files_collection

    chunks = {p.id: p.payload for p in ingester.store.scroll(ingester.settings.collection)}
    records = {
        p.id: {k: v for k, v in p.payload.items() if k != "indexed_at"}
        for p in ingester.store.scroll(files_collection(ingester.settings.collection))
    }
    return chunks, records


def test_kill_9_the_watcher_mid_job_then_restart_equals_a_clean_run(tmp_path, encoders, parser_pool, kind):
    folder = tmp_path / "docs"
    write_policies(folder, 2)
    data_dir = tmp_path / "watched"
    child, lines = _start_child(kind, data_dir, folder)
    try:
        _next_line(lines, lambda line: line.startswith("idle"))  # the first sync is done
        write_policies(folder, 10, start=2)  # a change the watcher picks up: 10 new files
        (folder / "policy-00.md").unlink()
        _next_line(lines, lambda line: line.split()[1:2] == ["running"] and int(line.split()[2]) >= 3)
        os.kill(child.pid, signal.SIGKILL)  # mid-job: files are being written
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL

    child, lines = _start_child(kind, data_dir, folder)  # restarted: it syncs the folder first
    try:
        _next_line(lines, lambda line: line.startswith("idle"))
    finally:
        child.kill()
        child.wait()
    restarted = Ingester(kind, data_dir, encoders, parser_pool, ingest_write_batch=4)
    clean = Ingester(kind, tmp_path / "clean", encoders, parser_pool, ingest_write_batch=4)
    try:
        clean.run(folder)
        assert _snapshot(restarted) == _snapshot(clean)
        assert len(_snapshot(clean)[1]) == 11
    finally:
        restarted.close()
        clean.close()


# --- `cairn ingest FOLDER --watch`, as a user runs it ------------------------------------------


def test_cairn_ingest_watch_prints_a_report_per_sync(tmp_path):
    folder = tmp_path / "docs"
    write_policies(folder, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "QDRANT_", "COHERE_"))} | {
        "CAIRN_DATA_DIR": str(tmp_path / "index"),
        "CAIRN_WATCH_DEBOUNCE_S": str(DEBOUNCE_S),
    }
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cairn", "ingest", str(folder), "--watch", "--json"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    reports: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [reports.put(json.loads(line)) for line in watcher.stdout], daemon=True).start()

    def files(report: dict) -> dict:
        return {k: v for k, v in report["files"].items() if v}

    try:
        assert files(reports.get(timeout=300)) == {"added": 1}
        (folder / "policy-01.md").write_text(policy_text(1))
        assert files(reports.get(timeout=DEBOUNCE_S + ONE_INGEST_S)) == {"added": 1, "unchanged": 1}
        (folder / "policy-01.md").rename(folder / "renamed.md")
        assert files(reports.get(timeout=DEBOUNCE_S + ONE_INGEST_S)) == {"added": 1, "deleted": 1, "unchanged": 1}
        (folder / "renamed.md").unlink()
        assert files(reports.get(timeout=DEBOUNCE_S + ONE_INGEST_S)) == {"deleted": 1, "unchanged": 1}
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, watcher.stderr.read()

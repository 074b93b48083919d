"""Ingest jobs in the serving process: one at a time, in a worker thread, through the same
incremental pipeline, while searches go on; uploads and deletes; both backends."""

from __future__ import annotations

import io
import threading
import time

import pytest
from fixtures_live import (
    HR,
    PUBLIC,
    indexed_paths,
    live_runtime,
    wait_for,
    write_policies,
)
from fixtures_retrieval import RESTRICTED_PATH, write_corpus

from ingest.jobs import JobState
from ingest.sources import SourceConflictError
from ingest.uploads import UploadError
from retrieval.search_schemas import SearchRequest


def _search(runtime, query: str, identity=PUBLIC) -> list[str]:
    response = runtime.search.search(SearchRequest(query=query, top_k=5, rerank=False), identity)
    return [hit.path for hit in response.hits]


def test_a_job_runs_through_its_life_cycle_and_a_rerun_skips_everything(live, tmp_path):
    docs = tmp_path / "docs" / "policies"
    write_policies(docs, 4)
    jobs = live.ingest_jobs
    job = jobs.submit(docs)
    assert job.state in (JobState.queued, JobState.running) and job.source == "policies" and job.root == str(docs)
    done = jobs.wait(job.id, timeout=300)
    assert done.state == JobState.done, done.error
    assert (done.files_total, done.files_to_index, done.files_done, done.files_failed) == (4, 4, 4, 0)
    assert done.chunks_written == done.report.chunks.written > 0
    assert done.report.files.added == 4 and done.failures == []
    assert done.started_at >= done.submitted_at and done.finished_at >= done.started_at
    assert done.files_per_s > 0 and done.eta_s == 0
    assert [j.id for j in jobs.jobs()] == [job.id]
    assert indexed_paths(live) == {f"policy-{i:02}.md" for i in range(4)}
    source = jobs.sources.get("policies")
    assert source.root == str(docs) and not source.uploads and source.synced_at

    (docs / "policy-00.md").unlink()
    again = jobs.wait(jobs.submit(docs).id, timeout=300)
    assert again.report.files.unchanged == 3 and again.report.files.deleted == 1 and again.files_to_index == 0
    assert jobs.jobs()[0].id == again.id  # newest first


def test_failures_are_named_and_a_job_that_cannot_run_says_why(live, tmp_path):
    docs = tmp_path / "docs" / "mixed"
    write_policies(docs, 1)
    (docs / "empty.md").write_text("")
    (docs / "notes.xyz").write_text("unsupported")
    done = live.ingest_jobs.wait(live.ingest_jobs.submit(docs).id, timeout=300)
    assert done.state == JobState.done and done.report.files.added == 1
    reasons = {f.path: f.error for f in done.failures}
    assert set(reasons) == {"empty.md", "notes.xyz"}
    assert reasons["empty.md"].startswith("empty file") and "unsupported file type" in reasons["notes.xyz"]
    assert [f.path for f in live.ingest_jobs.sources.get("mixed").failures] == ["empty.md", "notes.xyz"]

    bad_acl = tmp_path / "docs" / "bad-acl"
    write_policies(bad_acl, 1)
    (bad_acl / "cairn-acl.yaml").write_text("rules: [{pattern: '**'}]\n")
    failed = live.ingest_jobs.wait(live.ingest_jobs.submit(bad_acl).id, timeout=300)
    assert (
        failed.state == JobState.failed and failed.error.kind == "settings" and "cairn-acl.yaml" in failed.error.message
    )

    with pytest.raises(NotADirectoryError, match="is not a folder"):
        live.ingest_jobs.submit(tmp_path / "docs" / "missing")


def test_a_change_while_a_job_waits_joins_the_waiting_job(live, tmp_path):
    first, second = tmp_path / "docs" / "first", tmp_path / "docs" / "second"
    write_policies(first, 6)
    write_policies(second, 1)
    jobs = live.ingest_jobs
    running = jobs.submit(first)
    waiting = jobs.submit(second)
    assert jobs.submit(second).id == waiting.id  # folded into the job that waits
    assert jobs.wait(waiting.id, timeout=300).state == JobState.done
    assert jobs.get(running.id).state == JobState.done
    assert len(jobs.jobs()) == 2


def test_a_search_during_a_long_ingest_answers_and_is_correct(tmp_path, encoders, parser_pool, kind):
    """The company corpus is searchable; a long job adds 40 files meanwhile."""
    runtime = live_runtime(kind, tmp_path, encoders, parser_pool)
    try:
        roots = write_corpus(tmp_path / "docs")
        for source, root in roots.items():
            assert runtime.ingest_jobs.wait(runtime.ingest_jobs.submit(root, source).id, timeout=300).failures == []
        before = _search(runtime, "meal allowance abroad")
        assert before[0] == "handbook/expenses.md"

        bulk = tmp_path / "docs" / "bulk"
        write_policies(bulk, 40, sections=4)
        job = runtime.ingest_jobs.submit(bulk)
        wait_for(lambda: runtime.ingest_jobs.get(job.id).state == JobState.running, 60, what="the job starting")
        answered_while_running, latencies = 0, []
        while runtime.ingest_jobs.get(job.id).state == JobState.running:
            start = time.perf_counter()
            assert _search(runtime, "meal allowance abroad")[0] == "handbook/expenses.md"
            assert RESTRICTED_PATH in _search(runtime, "Nightingale retention bonus", HR)
            assert RESTRICTED_PATH not in _search(runtime, "Nightingale retention bonus", PUBLIC)
            latencies.append(time.perf_counter() - start)
            answered_while_running += runtime.ingest_jobs.get(job.id).state == JobState.running
        done = runtime.ingest_jobs.get(job.id)
        assert done.state == JobState.done and done.report.files.added == 40
        assert answered_while_running >= 1, "no search ran while the job did"
        assert _search(runtime, "Policy 7 clause 2 sentence 3")[0].startswith("policy-")
    finally:
        runtime.close()


@pytest.fixture(params=["edge", "server"])
def kind(request) -> str:
    return request.param


def test_uploads_land_in_their_source_folder_with_its_groups_and_delete_removes_them(live, tmp_path):
    jobs = live.ingest_jobs
    files = [
        ("budget.md", io.BytesIO(b"# Budget 2026\n\nThe Osprey programme gets 4.2 million euros.")),
        ("C:\\Users\\ana\\notes.txt", io.BytesIO(b"Osprey programme kickoff notes: the steering group meets monthly.")),
    ]
    job = jobs.wait(jobs.add_uploads("finance-uploads", files, groups=["finance"]).id, timeout=300)
    assert job.state == JobState.done and job.report.files.added == 2 and job.kind == "upload"
    folder = tmp_path / "uploads" / "finance-uploads"
    assert sorted(p.name for p in folder.iterdir()) == ["budget.md", "cairn-acl.yaml", "notes.txt"]
    records = {r.path: r for r in jobs.documents()}
    assert {p: r.groups for p, r in records.items()} == {"budget.md": ["finance"], "notes.txt": ["finance"]}
    assert _search(live, "Osprey programme") == []  # public cannot read finance
    assert jobs.sources.get("finance-uploads").uploads

    deleted = jobs.delete_document(records["budget.md"].doc_id)
    assert deleted.file_removed and deleted.chunks_deleted >= 1 and deleted.path == "budget.md"
    assert not (folder / "budget.md").exists() and indexed_paths(live) == {"notes.txt"}
    assert jobs.delete_document(records["budget.md"].doc_id) is None
    # a re-sync (a restart, "Sync now") sees the folder as it is
    assert jobs.wait(jobs.sync()[0].id, timeout=300).report.files.unchanged == 1


def test_uploads_are_refused_before_anything_is_written(live, tmp_path):
    jobs = live.ingest_jobs
    for name, message in [
        (".hidden.md", "hidden files"),
        ("run.exe", "unsupported file type"),
        ("cairn-acl.yaml", "access rules"),
        ("", "no name"),
    ]:
        with pytest.raises(UploadError, match=message):
            jobs.add_uploads("inbox", [("ok.md", io.BytesIO(b"fine")), (name, io.BytesIO(b"x"))])
    with pytest.raises(UploadError, match="source name"):
        jobs.add_uploads("../etc", [("ok.md", io.BytesIO(b"fine"))])
    assert not (tmp_path / "uploads" / "inbox").exists()

    docs = tmp_path / "docs" / "handbook"
    write_policies(docs, 1)
    jobs.wait(jobs.submit(docs).id, timeout=300)
    with pytest.raises(SourceConflictError, match="is the folder"):  # its sync would drop the folder's files
        jobs.add_uploads("handbook", [("ok.md", io.BytesIO(b"fine"))])
    jobs.wait(jobs.add_uploads("inbox", [("ok.md", io.BytesIO(b"fine text"))]).id, timeout=300)
    with pytest.raises(SourceConflictError, match="holds uploaded files"):
        jobs.submit(docs, "inbox")
    with pytest.raises(UploadError, match="its access groups come from"):
        jobs.add_uploads("inbox", [("more.md", io.BytesIO(b"more"))], groups=["hr"])


def test_closing_stops_the_running_job_and_a_rerun_finishes_it(tmp_path, encoders, parser_pool, kind):
    runtime = live_runtime(kind, tmp_path, encoders, parser_pool)
    docs = tmp_path / "docs" / "many"
    write_policies(docs, 12)
    job = runtime.ingest_jobs.submit(docs)
    queued = runtime.ingest_jobs.submit(tmp_path / "docs")
    wait_for(lambda: runtime.ingest_jobs.get(job.id).files_done >= 2, 300, every=0.05, what="two files indexed")
    closing = threading.Thread(target=runtime.close)
    closing.start()
    closing.join(120)
    stopped, never_ran = runtime.ingest_jobs.get(job.id), runtime.ingest_jobs.get(queued.id)
    assert stopped.state == JobState.failed and stopped.error.kind == "stopped" and stopped.files_done < 12
    assert never_ran.state == JobState.failed and never_ran.error.kind == "stopped"

    again = live_runtime(kind, tmp_path, encoders, parser_pool)
    try:
        rerun = again.ingest_jobs.wait(again.ingest_jobs.submit(docs).id, timeout=300)
        assert rerun.state == JobState.done and rerun.report.files.unchanged >= 1
        assert indexed_paths(again) == {f"policy-{i:02}.md" for i in range(12)}
    finally:
        again.close()

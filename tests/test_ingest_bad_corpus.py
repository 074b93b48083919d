"""The bad-input corpus (tests/bad_inputs.py): each hostile or broken file is reported under its
path with a reason that says what happened and what to do (or is indexed, where it can be), and
the good file beside it is indexed. Most kinds run on both backends; the kinds that need size run
on the embedded one, each under its bound (a parser memory limit, a short timeout)."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from bad_inputs import KINDS, BadInput, can_mknod, write_corpus, xlsx_million_cells
from fixtures_ingest import Ingester


def _params():
    for kind in KINDS:
        for backend in ("edge",) if kind.bound else ("edge", "server"):
            yield pytest.param(kind, backend, id=f"{kind.kind}-{backend}")


@pytest.mark.parametrize("kind,backend", list(_params()))
def test_bad_input_is_reported_and_its_neighbour_indexed(
    kind: BadInput, backend, tmp_path, encoders, request, monkeypatch
):
    if kind.needs == "mknod" and not can_mknod(tmp_path):
        pytest.skip("creating a device file needs CAP_MKNOD")
    pool = request.getfixturevalue(
        {"memory": "tight_memory_pool", "timeout": "short_timeout_pool"}.get(kind.bound, "parser_pool")
    )
    overrides = {"max_file_mb": kind.max_file_mb} if kind.max_file_mb else {}
    ingester = Ingester(backend, tmp_path / "index", encoders, pool, **overrides)
    root = tmp_path / "docs"
    bad = write_corpus(root, [kind])[kind.kind]
    try:
        inject_fault(kind, bad, ingester, monkeypatch)
        with worker_memory(pool) as memory:
            report = ingester.run(root)
        failures = {f.path: f.error for f in report.failures}
        if kind.reason is None:
            assert failures == {}
            text = " ".join(c["text"] for c in ingester.chunks(path=kind.rel_path))
            assert all(fragment in text for fragment in kind.indexed_text) and "\x00" not in text
        else:
            assert list(failures) == [kind.rel_path], failures
            for fragment in kind.reason:
                assert fragment in failures[kind.rel_path], failures[kind.rel_path]
            assert ingester.chunks(path=kind.rel_path) == []
        neighbour = ingester.chunks(path=f"{kind.kind}/good.md")
        assert neighbour and "the meal allowance is" in neighbour[0]["text"]
        assert report.files.failed == len(failures)
        if kind.bound == "memory":
            limit = pool.memory_mb
            peak = f"{memory.peak_mb:.0f} MB address space, {memory.rss_mb:.0f} MB resident"
            print(f"\n{kind.kind}: parser peak {peak}, limit {limit} MB")
            assert 0 < memory.peak_mb <= limit
    finally:
        ingester.close()


# --- faults that happen to a file during the run ----------------------------------------------
class FaultAtParse:
    """The parser pool, with something done to one file just before or after it is parsed."""

    def __init__(self, pool, path: Path, before=None, after=None) -> None:
        self.pool, self.path, self.before, self.after = pool, str(path), before, after

    def parse(self, jobs):
        jobs = list(jobs)
        if self.before and any(job.path == self.path for job in jobs):
            self.before(Path(self.path))
        for outcome in self.pool.parse(jobs):
            if self.after and outcome.job.path == self.path:
                self.after(Path(self.path))
            yield outcome


def _append(path: Path) -> None:
    with path.open("a") as handle:  # as a writer still saving it would
        handle.write("\nA paragraph written while the file was being read.\n")


def inject_fault(kind: BadInput, bad: Path, ingester: Ingester, monkeypatch) -> None:
    if kind.fault == "delete_after_discovery":
        import ingest.pipeline

        listed = ingest.pipeline.discover

        def discover_then_delete(*args, **kwargs):
            found = listed(*args, **kwargs)
            bad.unlink()
            return found

        monkeypatch.setattr(ingest.pipeline, "discover", discover_then_delete)
    elif kind.fault == "delete_before_parse":
        ingester.pipeline.parser_pool = FaultAtParse(ingester.pipeline.parser_pool, bad, before=Path.unlink)
    elif kind.fault == "append_after_parse":
        ingester.pipeline.parser_pool = FaultAtParse(ingester.pipeline.parser_pool, bad, after=_append)
    else:
        assert kind.fault is None, kind.fault


# --- pools for the kinds that need size --------------------------------------------------------
def _vm_mb(pid: int, field: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None  # gone, or a zombie without its memory lines


class _Peak:
    peak_mb = 0.0  # VmPeak: the largest address space, what RLIMIT_AS bounds
    rss_mb = 0.0  # VmHWM: the largest resident set


@contextmanager
def worker_memory(pool):
    """The largest address space and resident set any parser process reached meanwhile, read
    from the kernel's own high-water marks every 10 ms (a process that dies keeps its last)."""
    peak, done = _Peak(), threading.Event()
    pids = getattr(pool, "worker_pids", None)

    def sample():
        while not done.is_set():
            for pid in pool.worker_pids:
                peak.peak_mb = max(peak.peak_mb, _vm_mb(pid, "VmPeak") or 0)
                peak.rss_mb = max(peak.rss_mb, _vm_mb(pid, "VmHWM") or 0)
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True) if pids is not None else None
    if thread:
        thread.start()
    try:
        yield peak
    finally:
        done.set()
        if thread:
            thread.join()


# The parse of a million-cell sheet needs ~250 MB of address space above what a worker holds once
# it has parsed a small sheet; the limit leaves 96 MB, so the sheet must fail on memory (and
# quickly enough: the limit is reached near the end of its ~60 s parse) while a Markdown passes.
_HEADROOM_MB = 96


@pytest.fixture(scope="module")
def tight_memory_pool(tmp_path_factory):
    from ingest.parser_pool import ParseJob, ParserPool

    sheet = tmp_path_factory.mktemp("warm") / "small.xlsx"
    xlsx_million_cells(sheet, rows=20, columns=5)
    with ParserPool(workers=1, timeout_s=120) as probe:
        [outcome] = probe.parse([ParseJob("small.xlsx", str(sheet), "xlsx")])
        assert outcome.error is None, outcome.error
        baseline = _vm_mb(probe.worker_pids[0], "VmSize")
    assert baseline
    with ParserPool(workers=1, timeout_s=300, memory_mb=int(baseline) + _HEADROOM_MB) as pool:
        yield pool


@pytest.fixture(scope="module")
def short_timeout_pool(tmp_path_factory):
    """A 5 s timeout, on a worker that has already parsed a Markdown (its imports take longer)."""
    from ingest.parser_pool import ParseJob, ParserPool

    warm = tmp_path_factory.mktemp("warm") / "warm.md"
    warm.write_text("# Warm\n\nImports paid before the clock runs.\n")
    with ParserPool(workers=1, timeout_s=120) as pool:
        [outcome] = pool.parse([ParseJob("warm.md", str(warm), "md")])
        assert outcome.error is None, outcome.error
        pool.timeout_s = 5
        yield pool


def test_the_corpus_has_every_kind_the_issue_names():
    assert len(KINDS) >= 25 and len({k.kind for k in KINDS}) == len(KINDS)
    named = {
        "docx-zip-bomb",
        "xlsx-million-cells",
        "deeply-nested-html",
        "one-50mb-line",
        "nul-bytes-markdown",
        "encrypted-docx",
        "scanned-pdf",
        "eml-nested-attachments",
        "pptx-without-text",
        "changed-while-read",
        "name-with-newline",
        "name-invalid-utf8",
        "fifo",
        "device-file",
        "deleted-before-parsing",
        "empty-pdf",
        "pdf-5000-pages",
    }
    assert named <= {k.kind for k in KINDS}
    for kind in KINDS:  # a refusal says what to do, not only what went wrong
        assert kind.reason is None or len(kind.reason) >= 2, kind.kind
        assert (kind.reason is None) == bool(kind.indexed_text), kind.kind


def test_generators_stay_small_and_fast(tmp_path):
    """Every file is built in seconds and the corpus takes little disk (the 50 MB line is sparse)."""
    started = time.monotonic()
    paths = write_corpus(tmp_path, [k for k in KINDS if k.needs != "mknod" or can_mknod(tmp_path)])
    assert time.monotonic() - started < 60
    on_disk = sum(os.lstat(p).st_blocks * 512 for p in paths.values())
    assert on_disk < 64 * 1024 * 1024

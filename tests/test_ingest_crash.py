"""kill -9 at any moment, then a re-run, leaves exactly the index a clean run produces; a
second process never writes into a locked embedded index. Both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fixtures_ingest import REPO, Ingester

# Runs the real pipeline in a child process and prints a line per finished file.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, "tests")
    from fixtures_ingest import Ingester
    from retrieval.encoders import DenseEncoder, SparseEncoder
    from retrieval.settings import DEFAULT_EMBEDDING_MODEL

    class Progress:
        def planned(self, files_to_parse, files_total):
            print("planned", files_to_parse, flush=True)
        def file_done(self, rel_path, chunks, failed):
            print("done", rel_path, flush=True)

    kind, data_dir, folder = sys.argv[1:4]
    ingester = Ingester(kind, Path(data_dir), (DenseEncoder(DEFAULT_EMBEDDING_MODEL), SparseEncoder()), ingest_write_batch=4)
    ingester.run(Path(folder), progress=Progress())
    ingester.close()
    print("finished", flush=True)
    """
)


def make_corpus(root: Path, files: int = 10) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        sections = "\n\n".join(
            f"## Part {j}\n\n" + " ".join(f"Policy {i} clause {j} sentence {k} explains rule {i * j + k}." for k in range(12))
            for j in range(3)
        )
        (root / f"policy-{i:02}.md").write_text(f"# Policy {i}\n\n{sections}\n")
    return root


def run_child(kind: str, data_dir: Path, folder: Path, kill_after_done: int | None):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(data_dir), str(folder)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    done = 0
    for line in child.stdout:
        done += line.startswith("done")
        if kill_after_done is not None and done >= kill_after_done:
            os.kill(child.pid, signal.SIGKILL)  # mid-run: the next batch is being written
            break
    child.wait(timeout=600)
    return child.returncode, done


def snapshot(ingester: Ingester) -> tuple[dict, dict]:
    from retrieval.index_schema import files_collection

    chunks = {p.id: p.payload for p in ingester.store.scroll(ingester.settings.collection)}
    records = {
        p.id: {k: v for k, v in p.payload.items() if k != "indexed_at"}
        for p in ingester.store.scroll(files_collection(ingester.settings.collection))
    }
    return chunks, records


@pytest.mark.parametrize("kind", ["edge", "server"])
@pytest.mark.parametrize("kill_after_done", [1, 6])
def test_kill_9_then_rerun_equals_a_clean_run(kind, kill_after_done, tmp_path, encoders, parser_pool):
    folder = make_corpus(tmp_path / "docs")
    returncode, done = run_child(kind, tmp_path / "crashed", folder, kill_after_done)
    assert returncode == -signal.SIGKILL and done == kill_after_done, "the child was killed mid-run"

    crashed = Ingester(kind, tmp_path / "crashed", encoders, parser_pool, ingest_write_batch=4)
    clean = Ingester(kind, tmp_path / "clean", encoders, parser_pool, ingest_write_batch=4)
    try:
        rerun = crashed.run(folder)
        assert rerun.failures == []
        assert rerun.files.unchanged >= kill_after_done - 1
        clean.run(folder)
        assert snapshot(crashed) == snapshot(clean)
        assert len(snapshot(clean)[1]) == 10
    finally:
        crashed.close()
        clean.close()


def test_locked_index_is_reported_and_left_intact(tmp_path):
    """A running UI or server holds the embedded index; `cairn ingest` says so and writes nothing."""
    data_dir = tmp_path / "index"
    folder = make_corpus(tmp_path / "docs", files=2)
    env = os.environ | {"CAIRN_DATA_DIR": str(data_dir)}
    holder_code = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from retrieval.store.edge import EdgeStore
        store = EdgeStore(Path(sys.argv[1]))
        store.create_chunk_collection("cairn", 384)
        print("holding", flush=True)
        time.sleep(600)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", holder_code, str(data_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = subprocess.run(
            [sys.executable, "-m", "cairn", "ingest", str(folder), "--json"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 3
        assert "open in another process" in result.stderr
        assert result.stdout == ""
    finally:
        holder.kill()
        holder.wait()
    result = subprocess.run(
        [sys.executable, "-m", "cairn", "ingest", str(folder), "--json"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert '"added": 2' in result.stdout

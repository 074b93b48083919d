"""Every file that cannot be indexed is reported with its path and a plain reason, the run
goes on, and nothing already indexed is lost. Both backends."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fixtures_ingest import SAMPLE, Ingester

GOOD = "# Expenses\n\nThe daily meal allowance abroad is 60 euros.\n"


def failures_by_path(report) -> dict[str, str]:
    return {f.path: f.error for f in report.failures}


def write_bad_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "good.md").write_text(GOOD)
    (root / "empty.md").write_bytes(b"")
    (root / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 4)
    pdf = (SAMPLE / "policies" / "leave-policy.pdf").read_bytes()
    (root / "truncated.pdf").write_bytes(pdf[: len(pdf) // 3])
    (root / "encrypted.pdf").write_bytes(_encrypted_pdf(SAMPLE / "policies" / "leave-policy.pdf"))
    (root / "notes.xyz").write_text("not a supported type")
    os.symlink(root / "does-not-exist.md", root / "dangling.md")
    (root / "latin1.txt").write_bytes("Café crème: the cafétéria opens at 8h, déjà vu.\n".encode("cp1252"))
    os.symlink(root, root / "loop")  # a symlink back to the root must not loop
    return root


def _encrypted_pdf(source: Path) -> bytes:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(str(source)).pages:
        writer.add_page(page)
    writer.encrypt("secret")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_each_bad_file_is_reported_and_the_run_goes_on(ingester, tmp_path):
    root = write_bad_folder(tmp_path / "docs")
    report = ingester.run(root)
    failed = failures_by_path(report)
    assert failed["empty.md"].startswith("empty file")
    assert "binary content" in failed["binary.txt"]
    assert "corrupt or truncated" in failed["truncated.pdf"]
    assert "encrypted PDF" in failed["encrypted.pdf"]
    assert "unsupported file type '.xyz'" in failed["notes.xyz"]
    assert "broken symlink" in failed["dangling.md"]
    assert set(failed) == {"empty.md", "binary.txt", "truncated.pdf", "encrypted.pdf", "notes.xyz", "dangling.md"}
    assert report.files.added == 2  # good.md and the cp1252 text
    latin = ingester.chunks(path="latin1.txt")
    assert latin and "Café crème" in latin[0]["text"] and "déjà vu" in latin[0]["text"]
    assert report.files.failed == len(report.failures)


def test_size_limit(tmp_path, encoders, parser_pool):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "big.md").write_text(GOOD * 50)
    (root / "small.md").write_text(GOOD)
    ingester = Ingester("edge", tmp_path / "index", encoders, parser_pool, max_file_mb=0.001)
    try:
        failed = failures_by_path(ingester.run(root))
        assert list(failed) == ["big.md"] and "over the 0.001 MB limit" in failed["big.md"]
    finally:
        ingester.close()


def test_parse_timeout_abandons_the_file_without_hanging(tmp_path, encoders):
    from ingest.parser_pool import ParserPool

    root = tmp_path / "docs"
    root.mkdir()
    # a long HTML page takes far longer than 10 ms to partition
    rows = "".join(f"<h2>Part {i}</h2><p>{'Words of the section. ' * 40}</p>" for i in range(400))
    (root / "slow.html").write_text(f"<html><body><main>{rows}</main></body></html>")
    with ParserPool(workers=1, timeout_s=0.01) as pool:
        ingester = Ingester("edge", tmp_path / "index", encoders, pool)
        try:
            failed = failures_by_path(ingester.run(root))
            assert "took longer than 0.01 s" in failed["slow.html"]
        finally:
            ingester.close()


def test_a_broken_update_withdraws_what_was_indexed(ingester, tmp_path):
    """Its old chunks may carry content or groups the folder no longer vouches for (issue 16)."""
    root = tmp_path / "docs"
    root.mkdir()
    shutil.copy(SAMPLE / "policies" / "leave-policy.pdf", root / "leave.pdf")
    ingester.run(root)
    before = ingester.chunks(path="leave.pdf")
    assert before
    data = (root / "leave.pdf").read_bytes()
    (root / "leave.pdf").write_bytes(data[: len(data) // 4])  # truncated by a bad copy
    report = ingester.run(root)
    assert "leave.pdf" in failures_by_path(report)
    assert report.files.deleted == 0
    assert ingester.chunks(path="leave.pdf") == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_unreadable_file_is_reported(tmp_path):
    """Root reads anything, so the CLI runs without the capabilities that bypass file modes."""
    import json
    import subprocess
    import sys

    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.md").write_text(GOOD)
    (root / "secret.md").write_text(GOOD)
    (root / "secret.md").chmod(0o000)
    caps = "-dac_override,-dac_read_search"
    result = subprocess.run(
        ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable, "-m", "cairn", "ingest", str(root), "--json"],
        capture_output=True, text=True, env=os.environ | {"CAIRN_DATA_DIR": str(tmp_path / "index")}, timeout=600,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [f["path"] for f in report["failures"]] == ["secret.md"]
    assert "permission denied" in report["failures"][0]["error"]
    assert report["files"]["added"] == 1


def test_an_index_built_with_another_model_is_refused_and_kept(ingester, tmp_path):
    """An index of 768-d vectors (e.g. built with all-mpnet-base-v2) and the 384-d MiniLM."""
    from retrieval.encoders import SparseVec
    from retrieval.index_schema import ChunkPoint
    from retrieval.store import IncompatibleIndexError

    store, collection = ingester.store, ingester.settings.collection
    store.create_chunk_collection(collection, 768)
    old = ChunkPoint(
        id="00000000-0000-0000-0000-000000000001",
        dense=[1.0] * 768,
        sparse=SparseVec(indices=[1], values=[1.0]),
        payload={"path": "old.md"},
    )
    store.upsert_chunks(collection, [old])
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.md").write_text(GOOD)
    expected = "holds 768-d dense vectors.*makes 384-d ones; nothing was changed.*cairn index reindex"
    with pytest.raises(IncompatibleIndexError, match=expected):
        ingester.run(root)
    assert store.dense_size(collection) == 768
    assert [c["path"] for c in ingester.chunks()] == ["old.md"]

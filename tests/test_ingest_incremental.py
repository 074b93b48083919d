"""Re-runs on both backends: unchanged files skipped, edits replaced, renames and deletions
removed, ACL changes re-labelled without re-embedding, sources kept apart."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval.index_schema import files_collection

LEAVE = "# Leave\n\n## Annual leave\n\nEmployees receive 25 days of paid leave each year. {extra}\n"
SECURITY = "# Security\n\nReport a lost laptop to the service desk within one hour.\n"
TRAVEL = "Travel\n\nThe daily meal allowance abroad is 60 euros. Receipts are due within 30 days.\n"


def make_folder(root: Path) -> Path:
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "leave.md").write_text(LEAVE.format(extra=""))
    (root / "security.md").write_text(SECURITY)
    (root / "travel.txt").write_text(TRAVEL)
    return root


def test_rerun_skips_unchanged_files(ingester, tmp_path):
    root = make_folder(tmp_path / "docs")
    first = ingester.run(root)
    assert (first.files.added, first.failures) == (3, [])
    ids = {c["id"] for c in ingester.chunks()}
    again = ingester.run(root)
    assert again.files.unchanged == 3
    assert (again.files.added, again.files.updated, again.chunks.written, again.chunks.deleted) == (0, 0, 0, 0)
    assert {c["id"] for c in ingester.chunks()} == ids


def test_edited_file_is_replaced(ingester, tmp_path):
    root = make_folder(tmp_path / "docs")
    ingester.run(root)
    old = ingester.chunks(path="policies/leave.md")
    (root / "policies" / "leave.md").write_text(LEAVE.format(extra="Unused days expire on March 31st."))
    report = ingester.run(root)
    assert (report.files.updated, report.files.unchanged) == (1, 2)
    new = ingester.chunks(path="policies/leave.md")
    assert {c["doc_id"] for c in new} == {old[0]["doc_id"]}, "an edited file keeps its doc_id"
    assert not {c["id"] for c in old} & {c["id"] for c in new}
    assert any("March 31st" in c["text"] for c in new)
    assert report.chunks.deleted == len(old)


def test_rename_and_delete(ingester, tmp_path):
    root = make_folder(tmp_path / "docs")
    ingester.run(root)
    os.rename(root / "security.md", root / "policies" / "security.md")
    (root / "travel.txt").unlink()
    report = ingester.run(root)
    assert (report.files.added, report.files.deleted, report.files.unchanged) == (1, 2, 1)
    paths = {c["path"] for c in ingester.chunks()}
    assert paths == {"policies/leave.md", "policies/security.md"}
    records = {r.payload["path"] for r in ingester.store.scroll(files_collection("docs"))}
    assert records == paths


def test_no_delete_keeps_missing_files(ingester, tmp_path):
    root = make_folder(tmp_path / "docs")
    ingester.run(root)
    (root / "travel.txt").unlink()
    report = ingester.run(root, delete_missing=False)
    assert report.files.deleted == 0
    assert "travel.txt" in {c["path"] for c in ingester.chunks()}


def test_acl_change_relabels_without_reembedding(ingester, tmp_path):
    root = make_folder(tmp_path / "docs")
    ingester.run(root)
    ids = {c["id"] for c in ingester.chunks()}
    (root / "cairn-acl.yaml").write_text('rules:\n  - pattern: "policies/**"\n    groups: ["hr", "managers"]\n')
    report = ingester.run(root)
    assert (report.files.unchanged, report.files.relabelled, report.chunks.written) == (3, 1, 0)
    assert {c["id"] for c in ingester.chunks()} == ids
    assert {tuple(c["groups"]) for c in ingester.chunks(path="policies/leave.md")} == {("hr", "managers")}
    assert {tuple(c["groups"]) for c in ingester.chunks(path="security.md")} == {("public",)}


def test_two_sources_share_a_collection(ingester, tmp_path):
    a = make_folder(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    (b / "security.md").write_text(SECURITY)
    ingester.run(a, source="alpha")
    ingester.run(b, source="beta")
    (a / "security.md").unlink()
    report = ingester.run(a, source="alpha")
    assert report.files.deleted == 1
    sources = {(c["source"], c["path"]) for c in ingester.chunks()}
    assert ("beta", "security.md") in sources and ("alpha", "security.md") not in sources
    assert len({c["doc_id"] for c in ingester.chunks(path="policies/leave.md")}) == 1


def test_changed_chunk_settings_reembed(tmp_path, encoders, parser_pool):
    from fixtures_ingest import Ingester

    root = make_folder(tmp_path / "docs")
    first = Ingester("edge", tmp_path / "index", encoders, parser_pool)
    first.run(root)
    first.close()
    second = Ingester("edge", tmp_path / "index", encoders, parser_pool, chunk_tokens=60, chunk_overlap=10)
    try:
        report = second.run(root)
        assert report.files.updated == 3, "new chunking settings make every chunk stale"
        assert report.chunks.total == len(second.chunks())
    finally:
        second.close()


@pytest.mark.parametrize("bad", ["rules: [oops", "rules:\n  - pattern: '*'\n"])
def test_bad_acl_file_names_the_file(ingester, tmp_path, bad):
    from ingest.acl import AclError

    root = make_folder(tmp_path / "docs")
    (root / "cairn-acl.yaml").write_text(bad)
    with pytest.raises(AclError, match="cairn-acl.yaml"):
        ingester.run(root)

"""Access control against a hostile folder, on both backends: a symlink cannot re-label a
restricted file or pull one in from outside, a file that stops parsing loses its old chunks
(and their old groups), and the ACL matches whatever the case and wherever the ingest starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fixtures_ingest import Ingester

from retrieval.index_schema import files_collection

HR_ACL = 'rules:\n  - pattern: "hr/**"\n    groups: ["hr"]\n'
SALARIES = "# Salaries\n\nThe salary band for a Senior Engineer is 142,000 to 168,000 euros per year.\n"
HANDBOOK = "# Handbook\n\nThe office opens at eight in the morning and closes at six.\n"
SECRET_KEY = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"


def hr_folder(root: Path) -> Path:
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "salaries.md").write_text(SALARIES)
    (root / "handbook.md").write_text(HANDBOOK)
    (root / "cairn-acl.yaml").write_text(HR_ACL)
    return root


def groups_by_path(ingester) -> dict[str, set[tuple[str, ...]]]:
    out: dict[str, set[tuple[str, ...]]] = {}
    for chunk in ingester.chunks():
        out.setdefault(chunk["path"], set()).add(tuple(chunk["groups"]))
    return out


def public_texts(ingester) -> str:
    return "\n".join(c["text"] for c in ingester.chunks() if "public" in c["groups"])


def failures_by_path(report) -> dict[str, str]:
    return {f.path: f.error for f in report.failures}


# --- 1. symlinks ------------------------------------------------------------------------------


def test_a_mirror_link_cannot_relabel_a_restricted_folder(ingester, tmp_path):
    root = hr_folder(tmp_path / "docs")
    os.symlink("hr", root / "a-mirror")  # walked before hr/, and the same folder
    os.symlink("hr/salaries.md", root / "pay.md")  # a file link into hr/
    report = ingester.run(root)
    assert groups_by_path(ingester) == {"hr/salaries.md": {("hr",)}, "handbook.md": {("public",)}}
    assert "142,000" not in public_texts(ingester)
    assert report.failures == []  # a link to a file that is indexed under its own path is no fault


def test_a_mirror_link_added_later_keeps_the_restriction(ingester, tmp_path):
    root = hr_folder(tmp_path / "docs")
    ingester.run(root)
    os.symlink(root / "hr", root / "a-mirror")
    report = ingester.run(root)
    assert "142,000" not in public_texts(ingester)
    assert groups_by_path(ingester)["hr/salaries.md"] == {("hr",)}
    assert (report.files.deleted, report.files.unchanged) == (0, 2)


def test_links_out_of_the_root_are_refused(ingester, tmp_path):
    outside = tmp_path / "home"
    (outside / "keys").mkdir(parents=True)
    (outside / ".env").write_text(SECRET_KEY)
    (outside / "keys" / "aws.txt").write_text(SECRET_KEY)
    root = hr_folder(tmp_path / "docs")
    os.symlink(outside / ".env", root / "settings.txt")
    os.symlink(outside / "keys", root / "shared")
    report = ingester.run(root)
    failed = failures_by_path(report)
    assert set(failed) == {"settings.txt", "shared"}
    assert all("outside the ingested folder" in reason for reason in failed.values())
    assert set(groups_by_path(ingester)) == {"hr/salaries.md", "handbook.md"}
    assert "wJalrXUtnFEMI" not in "\n".join(c["text"] for c in ingester.chunks())


def test_a_folder_replaced_by_a_link_out_is_withdrawn(ingester, tmp_path):
    root = hr_folder(tmp_path / "docs")
    (root / "shared").mkdir()
    (root / "shared" / "notes.md").write_text(HANDBOOK)
    ingester.run(root)
    outside = tmp_path / "home" / "keys"
    outside.mkdir(parents=True)
    (outside / "notes.md").write_text(SECRET_KEY)
    (root / "shared" / "notes.md").unlink()
    (root / "shared").rmdir()
    os.symlink(outside, root / "shared")
    report = ingester.run(root, delete_missing=False)  # even a run that keeps missing files
    assert ingester.chunks(path="shared/notes.md") == []
    assert "removed from search" in failures_by_path(report)["shared"]
    assert "wJalrXUtnFEMI" not in "\n".join(c["text"] for c in ingester.chunks())


def test_a_link_to_a_hidden_file_in_the_root_is_refused(ingester, tmp_path):
    root = hr_folder(tmp_path / "docs")
    (root / ".git").mkdir()
    (root / ".git" / "credentials.txt").write_text(SECRET_KEY)
    os.symlink(".git/credentials.txt", root / "notes.txt")
    report = ingester.run(root)
    assert "hidden" in failures_by_path(report)["notes.txt"]
    assert "wJalrXUtnFEMI" not in "\n".join(c["text"] for c in ingester.chunks())


# --- 2. a failed re-parse withdraws the file ------------------------------------------------------


@pytest.fixture(params=["edge", "server"])
def small_limit(request, tmp_path, encoders, parser_pool):
    """A pipeline whose size limit (about 1 KB) a test file can cross."""
    ingester = Ingester(request.param, tmp_path / "index", encoders, parser_pool=parser_pool, max_file_mb=0.001)
    yield ingester
    ingester.close()


def _break(path: Path, how: str, outside: Path) -> None:
    if how == "empty":
        path.write_bytes(b"")
    elif how == "binary":
        path.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 3)
    elif how == "too_large":
        path.write_text(HANDBOOK * 40)
    elif how == "broken_link":
        path.unlink()
        os.symlink(path.parent / "gone.md", path)
    elif how == "link_out_of_root":
        outside.mkdir(exist_ok=True)
        (outside / "other.md").write_text(HANDBOOK.replace("eight", "nine"))
        path.unlink()
        os.symlink(outside / "other.md", path)


@pytest.mark.parametrize("how", ["empty", "binary", "too_large", "broken_link", "link_out_of_root"])
def test_a_file_that_fails_to_reparse_loses_its_old_chunks(small_limit, tmp_path, how):
    root = hr_folder(tmp_path / "docs")
    first = small_limit.run(root)
    assert (first.files.added, first.failures) == (2, [])
    _break(root / "handbook.md", how, tmp_path / "elsewhere")
    report = small_limit.run(root)
    assert small_limit.chunks(path="handbook.md") == []
    assert "removed from search" in failures_by_path(report)["handbook.md"]
    records = {r.payload["path"] for r in small_limit.store.scroll(files_collection("docs"))}
    assert records == {"hr/salaries.md"}
    assert report.chunks.total == len(small_limit.chunks())


def test_an_acl_change_reaches_a_file_whose_reparse_fails(ingester, tmp_path):
    root = hr_folder(tmp_path / "docs")
    (root / "hr" / "salaries.md").rename(root / "salaries.md")  # public at first
    ingester.run(root)
    assert groups_by_path(ingester)["salaries.md"] == {("public",)}
    (root / "cairn-acl.yaml").write_text('rules:\n  - pattern: "salaries.md"\n    groups: ["hr"]\n')
    (root / "salaries.md").write_bytes(b"")
    ingester.run(root)
    assert "142,000" not in public_texts(ingester)


def test_an_acl_change_and_an_edit_in_one_run(ingester, tmp_path):
    root = hr_folder(tmp_path / "docs")
    ingester.run(root)
    (root / "cairn-acl.yaml").write_text('rules:\n  - pattern: "*.md"\n    groups: ["staff"]\n')
    (root / "handbook.md").write_text(HANDBOOK + "\nThe canteen serves lunch from noon.\n")
    report = ingester.run(root)
    assert (report.files.updated, report.files.unchanged) == (1, 1)
    assert groups_by_path(ingester) == {"hr/salaries.md": {("staff",)}, "handbook.md": {("staff",)}}


# --- 3. the ACL fails closed ---------------------------------------------------------------------


def test_acl_patterns_ignore_case(ingester, tmp_path):
    root = tmp_path / "docs"
    (root / "HR").mkdir(parents=True)
    (root / "HR" / "Salaries.md").write_text(SALARIES)
    (root / "handbook.md").write_text(HANDBOOK)
    (root / "cairn-acl.yaml").write_text(HR_ACL + '  - pattern: "*.MD"\n    groups: ["staff"]\n')
    ingester.run(root)
    assert groups_by_path(ingester) == {"HR/Salaries.md": {("hr",)}, "handbook.md": {("staff",)}}


def test_a_subfolder_ingest_honours_the_acl_above_it(ingester, tmp_path):
    company = hr_folder(tmp_path / "company")
    payroll_first = '  - pattern: "hr/payroll/**"\n    groups: ["payroll"]\n'
    (company / "cairn-acl.yaml").write_text(HR_ACL.replace("rules:\n", "rules:\n" + payroll_first))
    (company / "hr" / "payroll").mkdir()
    (company / "hr" / "payroll" / "march.md").write_text(SALARIES.replace("Senior", "Staff"))
    ingester.run(company / "hr", source="hr")
    assert groups_by_path(ingester) == {"salaries.md": {("hr",)}, "payroll/march.md": {("payroll",)}}


def test_the_nearest_acl_file_wins(ingester, tmp_path):
    company = hr_folder(tmp_path / "company")
    (company / "hr" / "cairn-acl.yaml").write_text('rules:\n  - pattern: "*"\n    groups: ["hr", "managers"]\n')
    ingester.run(company / "hr", source="hr")
    assert groups_by_path(ingester) == {"salaries.md": {("hr", "managers")}}

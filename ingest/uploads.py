"""Uploaded files: one folder per source under ``CAIRN_UPLOAD_DIR`` (``data/uploads/<source>/``),
so a re-sync and a restart see them like any folder of documents. The folder's own
``cairn-acl.yaml`` gives the groups of what lands in it; a new source is created with an ACL
for the groups the uploader names, else its files are public like any file without a rule.

Names are reduced to their last part (no folder, no ``..``); hidden names, unsupported types and
the ACL file are refused; a file is written under a hidden temporary name (discovery and the
watcher skip it) and renamed into place once complete, so no job ever reads half a file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO, Sequence

import yaml

from ingest.discovery import SUPPORTED_TYPES

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")


class UploadError(ValueError):
    """An upload refused as given: the message says which file and why."""


class UploadTooLargeError(UploadError):
    pass


@dataclass(frozen=True)
class SavedUpload:
    rel_path: str
    bytes: int


class UploadFolders:
    def __init__(self, base: Path, acl_file_name: str, max_file_mb: float) -> None:
        self.base = Path(base)
        self.acl_file_name = acl_file_name
        self.max_bytes = int(max_file_mb * 1024 * 1024)
        self.max_file_mb = max_file_mb

    def folder(self, source: str) -> Path:
        if not _SOURCE_NAME.match(source or ""):
            raise UploadError(
                f"'{source}' is not a source name for uploads: use letters, digits, '.', '_' or '-' "
                "(at most 64, starting with a letter or digit)"
            )
        return (self.base / source).resolve()

    def prepare(self, source: str, groups: Sequence[str] | None) -> Path:
        """The source's folder, created with an ACL for ``groups`` when it is new; naming groups
        for a source that exists is refused (its ACL file decides)."""
        folder = self.folder(source)
        acl = folder / self.acl_file_name
        if folder.exists():
            if groups:
                raise UploadError(
                    f"source '{source}' exists: its access groups come from {acl}; edit that file "
                    "(the next sync re-labels its documents) instead of naming groups with the upload"
                )
            return folder
        bad = [g for g in groups or () if not _GROUP_NAME.match(g)]
        if bad:
            raise UploadError(f"bad group name(s) {', '.join(map(repr, bad))}: use letters, digits and . _ : @ -")
        folder.mkdir(parents=True)
        if groups:
            rules = {"rules": [{"pattern": "**", "groups": sorted(set(groups))}]}
            acl.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
        return folder

    def check_name(self, name: str) -> str:
        """The file name an upload is stored under, or UploadError saying why it is refused."""
        # a browser may send a full path (C:\\Users\\...\\a.pdf): keep its last part only
        base = PureWindowsPath(PurePosixPath(name or "").name).name.strip()
        if not base or base in (".", ".."):
            raise UploadError("an uploaded file has no name: give each file its name")
        if base.startswith("."):
            raise UploadError(f"'{base}': hidden files are never indexed; rename it without the leading '.'")
        if base == self.acl_file_name:
            raise UploadError(f"'{base}' is the source's access rules, not a document: edit it on the server")
        if Path(base).suffix.lower() not in SUPPORTED_TYPES:
            supported = ", ".join(sorted({s.lstrip(".") for s in SUPPORTED_TYPES}))
            raise UploadError(f"'{base}': unsupported file type (supported: {supported})")
        return base

    def save(self, folder: Path, name: str, stream: BinaryIO) -> SavedUpload:
        """Copy ``stream`` into ``folder/name`` (replacing a file of that name), atomically."""
        base = self.check_name(name)
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", dir=folder)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while block := stream.read(1 << 20):
                    size += len(block)
                    if size > self.max_bytes:
                        raise UploadTooLargeError(
                            f"'{base}' is over the {self.max_file_mb:g} MB limit (CAIRN_MAX_FILE_MB): "
                            "split it, or raise the limit"
                        )
                    out.write(block)
            if size == 0:
                raise UploadError(f"'{base}' is empty: nothing to index")
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, folder / base)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return SavedUpload(rel_path=base, bytes=size)

    def remove(self, source: str, rel_path: str) -> bool:
        """Delete an uploaded file; False when it is not there (or not inside the source's folder)."""
        folder = self.folder(source)
        path = (folder / rel_path).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            return False
        path.unlink()
        return True

    def remove_source(self, source: str) -> None:
        shutil.rmtree(self.folder(source), ignore_errors=True)

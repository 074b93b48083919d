"""Find the files under an ingested root: recursive, hidden entries skipped, symlinks followed
without loops, every file that cannot be read reported instead of silently dropped."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_TYPES = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".text": "txt",
    ".eml": "eml",
    ".csv": "csv",
}


@dataclass(frozen=True)
class FoundFile:
    path: Path  # absolute
    rel_path: str  # relative to the root, forward slashes
    file_type: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Rejected:
    rel_path: str
    reason: str


def discover(root: Path, skip_names: frozenset[str] = frozenset()) -> tuple[list[FoundFile], list[Rejected]]:
    """Walk ``root``; return indexable files and the ones rejected with a plain reason."""
    root = root.resolve()
    found: list[FoundFile] = []
    rejected: list[Rejected] = []
    seen_dirs: set[tuple[int, int]] = set()

    def on_error(error: OSError) -> None:
        rel = _relative(Path(error.filename or root), root)
        rejected.append(Rejected(rel, f"cannot read the folder: {error.strerror}; check its permissions"))

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=on_error):
        here = Path(dirpath)
        stat = here.stat()
        if (stat.st_dev, stat.st_ino) in seen_dirs:  # a symlink back to a folder already walked
            dirnames[:] = []
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name in skip_names:
                continue
            path = here / name
            rel = _relative(path, root)
            item = _inspect(path, rel)
            (found if isinstance(item, FoundFile) else rejected).append(item)
    return found, rejected


def _inspect(path: Path, rel: str) -> FoundFile | Rejected:
    if path.is_symlink() and not path.exists():
        return Rejected(rel, f"broken symlink to {os.readlink(path)}: fix or remove the link")
    file_type = SUPPORTED_TYPES.get(path.suffix.lower())
    if file_type is None:
        supported = ", ".join(sorted({s.lstrip(".") for s in SUPPORTED_TYPES}))
        return Rejected(rel, f"unsupported file type '{path.suffix or '(none)'}' (supported: {supported})")
    try:
        stat = path.stat()
    except OSError as exc:
        return Rejected(rel, f"cannot read the file: {exc.strerror}")
    if not os.access(path, os.R_OK):
        return Rejected(rel, "permission denied: the file is not readable by this user; check its permissions")
    return FoundFile(path=path, rel_path=rel, file_type=file_type, size=stat.st_size, mtime=stat.st_mtime)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()

"""Find the files under an ingested root: recursive, hidden entries skipped, every file that
cannot be read reported instead of silently dropped.

A name that is not valid UTF-8 (a file copied from an old Latin-1 share) is refused with its
bytes shown escaped: the index keys and stores paths as UTF-8 text.

Symlinks are never followed. Each file is indexed once, under its real path, so its access groups
come from where it really lies (a link named ``a-mirror -> hr`` cannot re-label ``hr/``). A link
whose target is inside the root is an alias of a file the walk reaches anyway and is passed over; a
link out of the root, to a hidden or skipped path, or that is broken is refused with its reason.
"""

from __future__ import annotations

import os
import stat as stat_mode
from dataclasses import dataclass, replace
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


# A file listed, then gone when it was read: a move or a delete during the run.
DISAPPEARED = (
    "the file disappeared while it was being indexed (moved or deleted during the run): nothing to do if that "
    "was meant; a moved file is indexed under its new name by the next run"
)


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
    folder: bool = False  # all that was indexed under it is affected


def discover(root: Path, skip_names: frozenset[str] = frozenset()) -> tuple[list[FoundFile], list[Rejected]]:
    """Walk ``root``; return indexable files and the ones rejected with a plain reason."""
    root = root.resolve()
    found: list[FoundFile] = []
    rejected: list[Rejected] = []

    def on_error(error: OSError) -> None:
        rel = _relative(Path(error.filename or root), root)
        rejected.append(Rejected(rel, f"cannot read the folder: {error.strerror}; check its permissions", folder=True))

    # followlinks=False: a folder link is checked below, never walked (no loops, no second name)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=on_error):
        here = Path(dirpath)
        walk_into = []
        for name in sorted(d for d in dirnames if not d.startswith(".")):
            if not _is_utf8(name):
                rejected.append(_bad_name(here / name, root, folder=True))
            elif (here / name).is_symlink():
                refusal = _check_link(here / name, root, skip_names)
                if refusal is not None:
                    rejected.append(replace(refusal, folder=True))
            else:
                walk_into.append(name)
        dirnames[:] = walk_into
        for name in sorted(filenames):
            if name.startswith(".") or name in skip_names:
                continue
            path = here / name
            if not _is_utf8(name):
                rejected.append(_bad_name(path, root))
                continue
            if path.is_symlink():
                refusal = _check_link(path, root, skip_names)
                if refusal is not None:
                    rejected.append(refusal)
                continue
            item = _inspect(path, _relative(path, root))
            (found if isinstance(item, FoundFile) else rejected).append(item)
    return found, rejected


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")  # os.walk turns undecodable bytes into lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def _bad_name(path: Path, root: Path, folder: bool = False) -> Rejected:
    shown = os.fsencode(_relative(path, root)).decode("utf-8", "backslashreplace")
    what = "folder" if folder else "file"
    return Rejected(
        shown,
        f"the {what} name is not valid UTF-8 (its bytes are shown escaped), so it cannot be stored in the "
        f"index; rename the {what} to UTF-8 (e.g. convmv -f latin1 -t utf8 --notest)",
        folder=folder,
    )


def _check_link(link: Path, root: Path, skip_names: frozenset[str]) -> Rejected | None:
    """None for a link to a path the walk indexes under its own name; else why it is refused."""
    rel = _relative(link, root)
    try:
        target = link.resolve(strict=True)
    except FileNotFoundError:
        return Rejected(rel, f"broken symlink to {os.readlink(link)}: fix or remove the link")
    except (OSError, RuntimeError):  # a loop of links
        return Rejected(rel, f"symlink loop through {os.readlink(link)}: fix or remove the link")
    if not target.is_relative_to(root):
        return Rejected(
            rel,
            f"symlink to {target}, outside the ingested folder {root}: refused so a link cannot pull "
            "files from elsewhere into the index; copy the file in, or ingest its folder on its own",
        )
    hidden = [part for part in target.relative_to(root).parts if part.startswith(".") or part in skip_names]
    if hidden:
        return Rejected(
            rel,
            f"symlink to the hidden or skipped path '{target.relative_to(root).as_posix()}': refused, "
            "hidden files are never indexed; remove the link or move the file out of the hidden folder",
        )
    return None


def _inspect(path: Path, rel: str) -> FoundFile | Rejected:
    file_type = SUPPORTED_TYPES.get(path.suffix.lower())
    if file_type is None:
        supported = ", ".join(sorted({s.lstrip(".") for s in SUPPORTED_TYPES}))
        return Rejected(
            rel,
            f"unsupported file type '{path.suffix or '(none)'}' (supported: {supported}): convert it to one of "
            "these to have it indexed, or leave it out of the folder",
        )
    try:
        stat = path.stat()
    except FileNotFoundError:
        return Rejected(rel, DISAPPEARED)
    except OSError as exc:
        return Rejected(rel, f"cannot read the file: {exc.strerror}; check its permissions")
    if not stat_mode.S_ISREG(stat.st_mode):  # reading a pipe or a device would hang or never end
        return Rejected(rel, "not a regular file (a pipe, socket or device): remove it from the folder")
    if not os.access(path, os.R_OK):
        return Rejected(rel, "permission denied: the file is not readable by this user; check its permissions")
    return FoundFile(path=path, rel_path=rel, file_type=file_type, size=stat.st_size, mtime=stat.st_mtime)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()

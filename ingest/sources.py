"""The sources a serving process keeps in sync: each name's folder, whether Cairn manages that
folder (uploads), and the files its last sync could not index, with the reason.

One JSON file next to the index (``DATA_DIR/<collection>.sources.json``), written only by the
job runner after a job, replaced atomically, so a restart and "Sync now" know every folder.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Sequence

from pydantic import BaseModel, ValidationError

from ingest.pipeline import Failure


class SourceEntry(BaseModel):
    name: str
    root: str  # the folder, absolute
    uploads: bool = False  # Cairn's own folder under CAIRN_UPLOAD_DIR: its files arrived as uploads
    synced_at: str | None = None  # ISO 8601, when its last job finished
    failures: list[Failure] = []  # of its last sync


class FolderNotAllowedError(ValueError):
    """A folder outside every root the operator allows (CAIRN_INGEST_ROOTS)."""


class SourceConflictError(ValueError):
    """A source name already bound to another kind of folder (uploads vs a folder of files)."""


def registry_path(data_dir: Path, collection: str) -> Path:
    return Path(data_dir) / f"{collection}.sources.json"


class SourceRegistry:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def all(self) -> dict[str, SourceEntry]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {name: SourceEntry.model_validate(entry) for name, entry in raw.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, ValidationError):  # a damaged file: the next job writes it anew
            return {}

    def get(self, name: str) -> SourceEntry | None:
        return self.all().get(name)

    def put(self, entry: SourceEntry) -> None:
        with self._lock:
            entries = self.all() | {entry.name: entry}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({k: v.model_dump() for k, v in sorted(entries.items())}, indent=2))
            os.replace(tmp, self.path)  # readers see the old file or the new one


def allowed_folder(folder: str | Path, roots: Sequence[Path]) -> Path:
    """``folder`` resolved (links and ``..`` included), if it is one of ``roots`` or inside one."""
    resolved = Path(folder).expanduser().resolve()
    allowed = [Path(root).expanduser().resolve() for root in roots]
    if not allowed:
        raise FolderNotAllowedError(
            "this service ingests no folders: CAIRN_INGEST_ROOTS is empty. Upload the files instead, "
            "or add the folder (or one above it) to CAIRN_INGEST_ROOTS and restart the service"
        )
    if not any(resolved == root or resolved.is_relative_to(root) for root in allowed):
        listed = ", ".join(str(root) for root in allowed)
        raise FolderNotAllowedError(
            f"{folder} is outside the folders this service may ingest (CAIRN_INGEST_ROOTS: {listed}): "
            "move the documents under one of them, or add the folder to CAIRN_INGEST_ROOTS and restart the service"
        )
    return resolved

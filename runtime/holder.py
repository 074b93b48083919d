"""Who holds the embedded index: the serving process writes ``serving.json`` next to the index
(its pid, what it is, and where it listens) and removes it when it stops, so `cairn ingest` can
hand its job to `cairn serve` instead of failing on the lock, or say what to do when the holder
is the chat page. A file left by a killed process is ignored: its pid is gone.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import psutil
from pydantic import BaseModel, ValidationError

HOLDER_FILE = "serving.json"


class IndexHolder(BaseModel):
    pid: int
    kind: Literal["api", "ui"]  # `cairn serve` (takes ingest jobs over HTTP) or the chat page
    url: str | None = None  # where it listens
    collection: str
    started_at: str


def holder_path(data_dir: Path) -> Path:
    return Path(data_dir) / HOLDER_FILE


def announce_holder(data_dir: Path, kind: Literal["api", "ui"], collection: str, url: str | None = None) -> IndexHolder:
    holder = IndexHolder(
        pid=os.getpid(), kind=kind, url=url, collection=collection, started_at=datetime.now(timezone.utc).isoformat()
    )
    path = holder_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{HOLDER_FILE}.{os.getpid()}")
    tmp.write_text(holder.model_dump_json(indent=2))
    os.replace(tmp, path)
    return holder


def withdraw_holder(data_dir: Path) -> None:
    """Remove the file if this process wrote it."""
    path = holder_path(data_dir)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def read_holder(data_dir: Path) -> IndexHolder | None:
    """The live process that announced itself as the holder, if any."""
    try:
        holder = IndexHolder.model_validate_json(holder_path(data_dir).read_text())
    except (OSError, ValidationError):
        return None
    if not _alive(holder.pid):
        return None
    return holder


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

"""Watch a folder (watchdog) and ask for a sync once it has been quiet for a moment.

Files appearing, changing, moving or disappearing all come down to the same answer: run the
incremental pipeline over the folder (unchanged files are skipped by their hash, vanished ones
removed). Events are debounced: a sync is asked for ``debounce_s`` after the last change, or
``max_wait_s`` after the first one of a burst that never pauses (a long copy), whichever comes
first. Hidden paths (editor swap files, uploads being written) are ignored, and so are reads,
so the sync's own reading of the files never triggers another one.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from watchdog.events import (
    EVENT_TYPE_ATTRIB,
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger("cairn.ingest.watch")

_CHANGES = frozenset(
    {
        EVENT_TYPE_CREATED,
        EVENT_TYPE_MODIFIED,
        EVENT_TYPE_MOVED,
        EVENT_TYPE_DELETED,
        EVENT_TYPE_CLOSED,
        EVENT_TYPE_ATTRIB,
    }
)


class FolderWatcher:
    def __init__(
        self, root: Path, on_change: Callable[[], None], debounce_s: float = 2.0, max_wait_s: float | None = None
    ) -> None:
        self.root = Path(root).resolve()
        self.on_change = on_change
        self.debounce_s = debounce_s
        self.max_wait_s = max_wait_s if max_wait_s is not None else max(10 * debounce_s, 10.0)
        self._lock = threading.Lock()
        self._first: float | None = None  # when the pending burst began
        self._last = 0.0
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._observer = Observer()
        self._observer.schedule(_Handler(self), str(self.root), recursive=True)
        self._timer = threading.Thread(target=self._debounce, name=f"cairn-watch-{self.root.name}", daemon=True)

    def start(self) -> "FolderWatcher":
        self._observer.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._observer.stop()
        self._observer.join(5)
        self._timer.join(5)

    def __enter__(self) -> "FolderWatcher":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def changed(self, path: str) -> None:
        """A change under the folder (called by the watchdog handler)."""
        if self._ignored(path):
            return
        with self._lock:
            self._last = time.monotonic()
            if self._first is None:
                self._first = self._last
        self._wake.set()

    def _ignored(self, path: str) -> bool:
        try:
            parts = Path(path).resolve().relative_to(self.root).parts
        except (ValueError, OSError):
            return True
        return any(part.startswith(".") for part in parts)

    def _debounce(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._stopped.is_set():
                with self._lock:
                    if self._first is None:
                        break
                    now = time.monotonic()
                    due = min(self._last + self.debounce_s, self._first + self.max_wait_s)
                    if now >= due:
                        self._first = None
                        fire = True
                    else:
                        fire = False
                if fire:
                    try:
                        self.on_change()
                    except Exception:  # a refused sync must not stop the watching
                        log.exception("syncing %s after a change failed", self.root)
                    break
                self._wake.wait(max(due - now, 0.01))
                self._wake.clear()


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return
        if event.is_directory and event.event_type == EVENT_TYPE_MODIFIED:
            return  # a folder's entries changed: the entry's own event says whether it matters
        self.watcher.changed(str(event.src_path))
        if event.event_type == EVENT_TYPE_MOVED:
            self.watcher.changed(str(event.dest_path))

"""A store whose callers take turns: for a backend that serves one request at a time
(qdrant-client's local mode, ``concurrent_reads = False``), the job runner writes through this
while searches hold the same lock around their reads, so a write never lands mid-read."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from retrieval.store import IndexStore

_ITERATORS = frozenset({"scroll", "scroll_chunks"})


class SerializedStore:
    def __init__(self, store: IndexStore, lock: AbstractContextManager) -> None:
        self._store = store
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with self._lock:
                result = value(*args, **kwargs)
                # a lazy scroll would read after the lock is released: read it all inside
                return iter(list(result)) if name in _ITERATORS else result

        return call

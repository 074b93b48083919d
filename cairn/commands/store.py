"""How every `cairn` command opens the index: a storage error a user can hit (locked, missing,
unreachable) becomes one plain line on stderr and exit code 3, never a traceback; an index the
current settings cannot use (another embedding model's vector size) exits 2."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import typer
from rich.console import Console

from retrieval.settings import Settings
from retrieval.store import IncompatibleIndexError, IndexStore, StoreError, open_store

# Exit codes shared by the commands: 0 ok, 1 some inputs failed, 2 usage error, 3 index unavailable.
EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INDEX_UNAVAILABLE = 1, 2, 3


@contextmanager
def opened_store(settings: Settings, err: Console) -> Iterator[IndexStore]:
    """The configured store, closed on exit; StoreError (opening or while in use) -> exit 3."""
    try:
        store = open_store(settings)
    except StoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_INDEX_UNAVAILABLE)
    try:
        yield store
    except StoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE if isinstance(exc, IncompatibleIndexError) else EXIT_INDEX_UNAVAILABLE)
    finally:
        store.close()

"""How every `cairn` command opens its settings, the index and the runtime: an error a user can
hit becomes one plain line on stderr and an exit code from the one table, never a traceback.
A storage error (locked, missing, unreachable) exits 3; an index the current settings cannot use
(another embedding model's vector size), a bad setting, identities file or key exits 2."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from cairn.exit_codes import ExitCode
from retrieval.settings import Settings
from retrieval.store import IncompatibleIndexError, IndexStore, StoreError, open_store

if TYPE_CHECKING:
    from runtime import Runtime

err = Console(stderr=True, soft_wrap=True)  # one line per error: greppable in logs


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print ``message`` as one error line; raise what this returns."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    return typer.Exit(code)


def load_settings(**overrides) -> Settings:
    """Settings from the environment with command-line overrides (None: not given); exit 2 naming the setting."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            err.print(f"[red]bad setting[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}")
        raise typer.Exit(ExitCode.USAGE)


def open_runtime(settings: Settings, store: IndexStore | None = None) -> Runtime:
    """The composition root's runtime (over ``store`` when one is given); a bad identities file or
    provider name exits 2 before anything loads, an index that cannot be opened 3."""
    from retrieval.access import IdentitiesFileError
    from runtime import build_runtime

    try:
        return build_runtime(settings, store)
    except (IdentitiesFileError, IncompatibleIndexError, ValueError) as exc:
        raise fail(str(exc), ExitCode.USAGE) from None
    except StoreError as exc:
        raise fail(str(exc), ExitCode.INDEX_UNAVAILABLE) from None


@contextmanager
def opened_store(settings: Settings, err: Console) -> Iterator[IndexStore]:
    """The configured store, closed on exit; StoreError (opening or while in use) -> exit 3."""
    try:
        store = open_store(settings.storage)
    except StoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.INDEX_UNAVAILABLE)
    try:
        yield store
    except StoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(ExitCode.USAGE if isinstance(exc, IncompatibleIndexError) else ExitCode.INDEX_UNAVAILABLE)
    finally:
        store.close()

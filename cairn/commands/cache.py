"""`cairn cache clear`: drop every answer the semantic answer cache holds."""

from __future__ import annotations

import typer
from rich.console import Console

from cairn.commands.opening import err, load_settings, opened_store

cache_app = typer.Typer(help="The semantic answer cache.", no_args_is_help=True)


@cache_app.command("clear")
def clear_command() -> None:
    """Drop every cached answer of the configured collection (answers are written again as asked)."""
    from answers.answer_cache import cache_collection, clear_cache

    settings = load_settings()
    with opened_store(settings, err) as store:
        dropped = clear_cache(store, cache_collection(settings.collection))
    Console().print(f"{dropped} cached answer(s) dropped from '{settings.collection}'")


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")

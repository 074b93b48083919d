"""`cairn index stats|list|reindex|switch|drop|snapshot`: what is indexed, aliases, zero-downtime
re-index, backups."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from cairn.commands.ingest import print_summary
from cairn.commands.opening import err, load_settings, opened_store
from cairn.exit_codes import ExitCode
from ingest.acl import AclError
from ingest.reindex import ReindexError, alias_target, drop_collection, switch_alias
from ingest.snapshots import create_snapshots, list_snapshots
from retrieval.index_schema import FILES_SUFFIX
from retrieval.store import IndexLockedError, IndexStore

index_app = typer.Typer(help="Inspect the index.", no_args_is_help=True)
snapshot_app = typer.Typer(
    help="Backups: server snapshots, or tar copies of the embedded index.", no_args_is_help=True
)


@contextmanager
def _store(settings) -> Iterator[IndexStore]:
    """The configured store; every storage error a user can hit becomes its message and an exit code."""
    with opened_store(settings, err) as store:
        try:
            yield store
        except ReindexError as exc:  # a StoreError, but the user's request is what is wrong
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(ExitCode.USAGE)


def list_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """Collections (with their chunk counts) and the aliases pointing at them."""
    settings = load_settings()
    with _store(settings) as store:
        aliases = store.aliases()
        collections = {}
        for name in store.list_collections():
            try:
                collections[name] = store.count(name)
            except IndexLockedError:
                collections[name] = None  # open in another process (embedded engine)
    result = {"collections": collections, "aliases": aliases, "configured": settings.collection}
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"collections ({'server' if settings.uses_server else settings.data_dir})")
    for column in ("collection", "points", "aliases"):
        table.add_column(column)
    for name, count in collections.items():
        pointing = ", ".join(sorted(a for a, target in aliases.items() if target == name))
        table.add_row(name, "locked" if count is None else str(count), pointing)
    Console().print(table)


def reindex_command(
    folders: List[Path] = typer.Argument(..., help="Every folder the index should hold (each folder's name is its source)."),
    alias: Optional[str] = typer.Option(None, "--alias", help="Alias to switch (default: CAIRN_COLLECTION)."),
    drop_old: bool = typer.Option(False, "--drop-old", help="Delete the previous collection after the switch."),
    allow_missing_sources: bool = typer.Option(
        False, "--allow-missing-sources", help="Switch even if the current index holds sources these folders lack."
    ),
    no_switch: bool = typer.Option(
        False, "--no-switch", help="Only build the new collection; switch later with `cairn index switch`."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    fill_later: bool = typer.Option(
        False,
        "--fill-later",
        help="Switch without the reranking model's vectors (a serving process fills them in the background; "
        "until then reranking encodes candidates per question). By default they are stored before the switch.",
    ),
) -> None:
    """Re-index into a new collection, then switch the alias to it (no downtime).

    The new collection NAME-<time>-<settings> is built with the current settings (chunking,
    embedding model); searches keep running on the old collection until the switch. Exit 0 when every file was indexed, 1 when some failed (the
    switch is done; each failure is listed), 2 when the re-index cannot go ahead, 3 when the
    index is locked or unreachable."""
    settings = load_settings(collection=alias)

    from cairn.commands.ingest import rerank_encoder_of
    from ingest.reindex import AliasReindexer
    from retrieval.encoders import build_encoders

    with _store(settings) as store:
        rerank = None if fill_later else rerank_encoder_of(settings)
        reindexer = AliasReindexer(settings, store, *build_encoders(settings.models), rerank_encoder=rerank)
        try:
            report = reindexer.run(
                folders, drop_old=drop_old, allow_missing_sources=allow_missing_sources, switch=not no_switch
            )
        except AclError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(ExitCode.USAGE)
        finally:
            reindexer.close()
    failed = any(r.failures for r in report.ingests)
    if as_json:
        print(report.model_dump_json())
    else:
        for ingest_report in report.ingests:
            print_summary(ingest_report)
        out = Console()
        if report.switched:
            out.print(f"[green]'{report.alias}' → {report.collection}[/green] (was {report.previous or 'nothing'})")
        else:
            out.print(f"built {report.collection}; '{report.alias}' still → {report.previous or 'nothing'}. "
                      f"Switch with `cairn index switch {report.collection}`")
        for name in report.dropped:
            out.print(f"dropped {name}")
        if report.kept_previous:
            out.print(f"previous collection {report.kept_previous}")
    if failed:
        raise typer.Exit(ExitCode.SOME_FAILED)


def switch_command(
    collection: str = typer.Argument(..., help="Collection the alias should point at (e.g. the previous one, to roll back)."),
    alias: Optional[str] = typer.Option(None, "--alias", help="Alias to switch (default: CAIRN_COLLECTION)."),
) -> None:
    """Point an alias (and its file-records alias) at another collection, atomically for search."""
    settings = load_settings(collection=alias)
    with _store(settings) as store:
        if alias_target(store, settings.collection).plain:
            raise ReindexError(
                f"'{settings.collection}' is a plain collection, not an alias: `cairn index reindex` turns it into one"
            )
        switch_alias(store, settings.collection, collection)
    Console().print(f"'{settings.collection}' → {collection}")


def drop_command(
    collection: str = typer.Argument(..., help="Collection to delete, with its file records."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a collection no alias points at (e.g. the one a re-index replaced)."""
    if collection.endswith(FILES_SUFFIX):
        err.print(f"[red]error:[/red] give the chunk collection; its '{FILES_SUFFIX}' records go with it")
        raise typer.Exit(ExitCode.USAGE)
    if not yes and not typer.confirm(f"Delete collection '{collection}' and its file records?"):
        raise typer.Exit(ExitCode.USAGE)
    settings = load_settings()
    with _store(settings) as store:
        if collection not in store.list_collections():
            raise ReindexError(f"no collection named '{collection}': list them with `cairn index list`")
        drop_collection(store, collection)
    Console().print(f"dropped {collection}")


_COLLECTION = typer.Option(None, "--collection", help="Collection or alias (default: CAIRN_COLLECTION).")
_OUT = typer.Option(None, "--out", help="Embedded index only: folder for the tar files (default: DATA_DIR/snapshots).")


@snapshot_app.command("create")
def snapshot_create(
    collection: Optional[str] = _COLLECTION, out: Optional[Path] = _OUT, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Snapshot the collection behind the alias and its file records.

    On a server, Qdrant writes
    them into its snapshots folder; embedded, a tar of each collection folder is written (it
    needs the index to itself: stop `cairn serve`/`cairn ui` first)."""
    settings = load_settings(collection=collection)
    with _store(settings) as store:
        infos = create_snapshots(store, settings.collection, out)
    _print_snapshots(infos, as_json, "created")


@snapshot_app.command("list")
def snapshot_list(
    collection: Optional[str] = _COLLECTION, out: Optional[Path] = _OUT, as_json: bool = typer.Option(False, "--json")
) -> None:
    """Snapshots of the collection behind the alias and of its file records."""
    settings = load_settings(collection=collection)
    with _store(settings) as store:
        infos = list_snapshots(store, settings.collection, out)
    _print_snapshots(infos, as_json, "snapshots")


def _print_snapshots(infos, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps([i.model_dump() for i in infos]))
        return
    table = Table(title=title)
    for column in ("collection", "snapshot", "bytes", "created", "where"):
        table.add_column(column)
    for i in infos:
        table.add_row(i.collection, i.name, str(i.size_bytes or ""), i.created or "", i.location)
    Console().print(table)


def stats_command(as_json: bool = typer.Option(False, "--json")) -> None:
    """Documents, chunks, per file type and last ingest of the configured collection, and how far
    the reranking model's vectors are filled."""
    from retrieval.index_stats import index_stats
    from retrieval.rerank import stored_vector_model

    settings = load_settings()
    with opened_store(settings, err) as store:
        if not store.collection_exists(settings.collection):
            err.print(f"no index yet in collection '{settings.collection}': run `cairn ingest FOLDER` to fill it")
            raise typer.Exit(ExitCode.INDEX_UNAVAILABLE)
        result = index_stats(store, settings.collection, stored_vector_model(settings.rerank))
    if as_json:
        print(result.model_dump_json())
        return
    out = Console()
    out.print(
        f"[bold]{result.collection}[/bold]: {result.documents} documents, {result.chunks} chunks, "
        f"last ingest {result.last_ingest}"
    )
    for kind, n in result.file_types.items():
        out.print(f"  {kind:6} {n}")
    fill = result.rerank_vectors
    if fill is not None:
        share = fill.filled / fill.chunks if fill.chunks else 1.0
        rest = "" if fill.complete else " (the rest are encoded per question until the fill reaches them)"
        out.print(f"reranking vectors ({fill.model}): {fill.filled} of {fill.chunks} chunks, {share:.0%}{rest}")


def register(app: typer.Typer) -> None:
    """Add `cairn index ...` to the `cairn` app."""
    index_app.command("stats")(stats_command)
    index_app.command("list")(list_command)
    index_app.command("reindex")(reindex_command)
    index_app.command("switch")(switch_command)
    index_app.command("drop")(drop_command)
    index_app.add_typer(snapshot_app, name="snapshot")
    app.add_typer(index_app, name="index")

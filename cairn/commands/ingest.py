"""`cairn ingest FOLDER` and `cairn index stats`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from ingest.acl import AclError
from retrieval.index_schema import FileRecord, files_collection
from retrieval.settings import Settings
from cairn.commands.store import EXIT_INDEX_UNAVAILABLE, EXIT_SOME_FAILED, EXIT_USAGE, opened_store

err = Console(stderr=True, soft_wrap=True)  # one line per error: greppable in logs


def _settings(**overrides) -> Settings:
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        for error in exc.errors():
            err.print(f"[red]bad setting[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}")
        raise typer.Exit(EXIT_USAGE)


class _Bar:
    """The rich progress bar the pipeline reports to."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("parsing", total=None, chunks=0)
        self.chunks = 0

    def planned(self, files_to_parse: int, files_total: int) -> None:
        skipped = files_total - files_to_parse
        self.progress.update(self.task, total=files_to_parse, description=f"indexing ({skipped} unchanged)")

    def file_done(self, rel_path: str, chunks: int, failed: bool) -> None:
        self.chunks += chunks
        self.progress.update(self.task, advance=1, chunks=self.chunks)


def ingest(
    folder: Path = typer.Argument(..., help="Folder of documents to index (recursive)."),
    source: str = typer.Option(None, help="Name of this source (default: the folder's name)."),
    collection: str = typer.Option(None, help="Collection to write (default: CAIRN_COLLECTION)."),
    no_delete: bool = typer.Option(False, "--no-delete", help="Keep documents that are gone from the folder."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the progress bar and table."),
) -> None:
    """Index a folder: new and changed files are parsed and embedded, unchanged ones skipped,
    deleted ones removed. Exit 0 when every file was indexed, 1 when some failed, 2 for usage
    errors, 3 when the index is locked or unreachable."""
    if not folder.is_dir():
        err.print(f"[red]error:[/red] {folder} is not a folder; give the folder of documents to index")
        raise typer.Exit(EXIT_USAGE)
    settings = _settings(collection=collection)

    from ingest.pipeline import IngestPipeline
    from retrieval.encoders import build_encoders

    with opened_store(settings, err) as store:
        pipeline = None
        try:
            dense, sparse = build_encoders(settings)
            pipeline = IngestPipeline(settings, store, dense, sparse)
            if as_json or not sys.stderr.isatty():
                report = pipeline.run(folder, source=source, delete_missing=not no_delete)
            else:
                columns = [
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                    TextColumn("{task.fields[chunks]} chunks"), TimeElapsedColumn(), TimeRemainingColumn(),
                ]
                with Progress(*columns, console=err) as progress:
                    report = pipeline.run(folder, source=source, delete_missing=not no_delete, progress=_Bar(progress))
        except AclError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_USAGE)
        finally:
            if pipeline is not None:
                pipeline.close()

    payload = report.model_dump(exclude={"source"})
    if as_json:
        print(json.dumps(payload))
    else:
        _print_summary(report)
    if report.failures:
        raise typer.Exit(EXIT_SOME_FAILED)


def _print_summary(report) -> None:
    out = Console()
    table = Table(title=f"{report.root} → {report.collection} ({report.seconds:.1f} s)")
    for name in ("added", "updated", "unchanged", "deleted", "failed"):
        table.add_column(name, justify="right")
    f = report.files
    table.add_row(*(str(v) for v in (f.added, f.updated, f.unchanged, f.deleted, f.failed)))
    out.print(table)
    out.print(f"chunks: {report.chunks.written} written, {report.chunks.deleted} deleted, {report.chunks.total} in the collection")
    if f.relabelled:
        out.print(f"access groups re-labelled on {f.relabelled} unchanged file(s)")
    for failure in report.failures:
        out.print(f"[yellow]failed[/yellow] {failure.path}: {failure.error}")


index_app = typer.Typer(help="Inspect the index.", no_args_is_help=True)


@index_app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Documents, chunks, per file type and last ingest of the configured collection."""
    settings = _settings()
    with opened_store(settings, err) as store:
        if not store.collection_exists(settings.collection):
            err.print(f"no index yet in collection '{settings.collection}': run `cairn ingest FOLDER` to fill it")
            raise typer.Exit(EXIT_INDEX_UNAVAILABLE)
        records = [FileRecord.model_validate(p.payload) for p in store.scroll(files_collection(settings.collection))]
        result = {
            "collection": settings.collection,
            "documents": len(records),
            "chunks": store.count(settings.collection),
            "file_types": dict(Counter(r.file_type for r in records).most_common()),
            "sources": dict(Counter(r.source for r in records).most_common()),
            "last_ingest": max((r.indexed_at for r in records), default=None),
        }
    if as_json:
        print(json.dumps(result))
        return
    out = Console()
    out.print(f"[bold]{result['collection']}[/bold]: {result['documents']} documents, {result['chunks']} chunks, last ingest {result['last_ingest']}")
    for kind, n in result["file_types"].items():
        out.print(f"  {kind:6} {n}")


def register(app: typer.Typer) -> None:
    from cairn.commands import index as index_admin  # list, reindex, switch, drop, snapshot: see that module

    index_admin.register(index_app)
    app.command("ingest")(ingest)
    app.add_typer(index_app, name="index")

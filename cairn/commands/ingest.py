"""`cairn ingest FOLDER`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cairn.commands.opening import err, load_settings, opened_store
from cairn.exit_codes import ExitCode
from ingest.acl import AclError


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
        raise typer.Exit(ExitCode.USAGE)
    settings = load_settings(collection=collection)

    from ingest.pipeline import IngestPipeline
    from retrieval.encoders import build_encoders

    with opened_store(settings, err) as store:
        pipeline = None
        try:
            dense, sparse = build_encoders(settings.models)
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
            raise typer.Exit(ExitCode.USAGE)
        finally:
            if pipeline is not None:
                pipeline.close()

    payload = report.model_dump(exclude={"source"})
    if as_json:
        print(json.dumps(payload))
    else:
        print_summary(report)
    if report.failures:
        raise typer.Exit(ExitCode.SOME_FAILED)


def print_summary(report) -> None:
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


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)

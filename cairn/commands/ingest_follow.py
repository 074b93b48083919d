"""Showing an ingest job as it runs, the same whether it runs in this process or in the
`cairn serve` that holds the index: a progress bar fed by the job's status, then the summary
table (or one JSON object) of its report."""

from __future__ import annotations

import json
import time
from typing import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from cairn.exit_codes import ExitCode
from ingest.jobs import IngestJobStatus, JobState, RerankFillStatus
from ingest.pipeline import IngestReport

StatusOf = Callable[[str], IngestJobStatus]
FillStatusOf = Callable[[], RerankFillStatus]

# a job that could not run: a missing folder or a bad ACL/settings is the user's to fix (2),
# an index that failed is 3, a stop or a bug 1
EXIT_OF_ERROR = {"folder": ExitCode.USAGE, "settings": ExitCode.USAGE, "index": ExitCode.INDEX_UNAVAILABLE}


def follow(job: IngestJobStatus, status_of: StatusOf, err: Console, bar: bool, poll_s: float = 0.25) -> IngestJobStatus:
    """Poll the job until it ends, with a progress bar on ``err`` when ``bar``."""
    if not bar:
        while not job.finished:
            time.sleep(poll_s)
            job = status_of(job.id)
        return job
    columns = [
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
        TextColumn("{task.fields[chunks]} chunks"), TimeElapsedColumn(), TimeRemainingColumn(),
    ]  # fmt: skip
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("queued", total=None, chunks=0)
        while True:
            if job.state == JobState.queued:
                description = "queued behind another job"
            elif job.files_to_index is None:
                description = "looking for changes"
            else:
                description = f"indexing ({(job.files_total or 0) - job.files_to_index} unchanged)"
            progress.update(
                task,
                description=description,
                total=job.files_to_index,
                completed=job.files_done,
                chunks=job.chunks_written,
            )
            if job.finished:
                return job
            time.sleep(poll_s)
            job = status_of(job.id)


def follow_fill(fill_status: FillStatusOf, err: Console, bar: bool, poll_s: float = 0.5) -> RerankFillStatus:
    """Poll the reranking vectors' fill until it is complete or failed, with a bar when ``bar``."""
    status = fill_status()
    if status.finished or not bar:
        while not status.finished:
            time.sleep(poll_s)
            status = fill_status()
        return status
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
               TimeElapsedColumn(), TimeRemainingColumn()]  # fmt: skip
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"reranking vectors ({status.model})", total=status.chunks, completed=status.filled)
        while not status.finished:
            time.sleep(poll_s)
            status = fill_status()
            progress.update(task, total=status.chunks, completed=status.filled)
    return status


def fill_outcome(status: RerankFillStatus, err: Console, as_json: bool) -> None:
    """A failed fill is reported, not fatal: the index answers, reranking encodes per question."""
    if status.state == "failed":
        err.print(
            f"[yellow]warning:[/yellow] storing the reranking vectors failed ({escape(status.error or '')}); "
            "search works, reranking encodes the candidates per question until the next ingest completes it",
            highlight=False,
        )
    elif status.state == "complete" and not as_json:
        err.print(f"Reranking vectors: {status.filled:,} of {status.chunks:,} chunks ({status.model}).", highlight=False)


def outcome(job: IngestJobStatus, err: Console, as_json: bool) -> ExitCode:
    """Print what the job did; the exit code it means."""
    if job.state == JobState.failed or job.report is None:
        error = job.error
        err.print(f"[red]error:[/red] {escape(error.message if error else 'the job failed')}", highlight=False)
        return EXIT_OF_ERROR.get(error.kind if error else "", ExitCode.SOME_FAILED)
    report = job.report
    if as_json:
        print(json.dumps(report.model_dump(exclude={"source"})), flush=True)
    else:
        print_summary(report)
    return ExitCode.SOME_FAILED if report.failures else ExitCode.OK


def print_summary(report: IngestReport) -> None:
    out = Console()
    table = Table(title=f"{report.root} → {report.collection} ({report.seconds:.1f} s)")
    for name in ("added", "updated", "unchanged", "deleted", "failed"):
        table.add_column(name, justify="right")
    f = report.files
    table.add_row(*(str(v) for v in (f.added, f.updated, f.unchanged, f.deleted, f.failed)))
    out.print(table)
    chunks = report.chunks
    out.print(f"chunks: {chunks.written} written, {chunks.deleted} deleted, {chunks.total} in the collection")
    if f.relabelled:
        out.print(f"access groups re-labelled on {f.relabelled} unchanged file(s)")
    for failure in report.failures:
        out.print(f"[yellow]failed[/yellow] {escape(failure.path)}: {escape(failure.error)}", highlight=False)

"""The reranking vectors' fill measured as a serving process runs it: its rate against the model's
own encoding rate on the same texts, and search latency while it runs against idle.

An index of ``--base`` (default: the sample corpus, filled) is served by a runtime built by the
composition root; then a folder of new documents (``--add``, default: a slice of a labelled
set's corpus) is handed to its ingest jobs, whose worker ingests it and fills the new chunks'
vectors in the background (nice 10), while searches of the base's questions run in the
foreground with the default reranker. Every figure is taken in this one process.

    cairn bench fill [--base data/sample] [--add ../shared/evalsets/python-faq/corpus] [--files 60]
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retrieval.access import Identity
from retrieval.search_schemas import SearchRequest
from retrieval.settings import Settings

_IDENTITY = Identity("cairn-bench", ("public",))
QUESTIONS = (
    "What is the maximum hotel rate I can expense in London?",
    "How do I report a lost laptop?",
    "How many vacation days do I get?",
    "Who approves travel over budget?",
    "What is the payload of the NR-7?",
    "How do I roll back a failed deployment?",
)


@dataclass
class Latency:
    searches: int
    p50_ms: float
    p95_ms: float
    rerank_p50_ms: float
    rerank_p95_ms: float


@dataclass
class FillBench:
    base: str
    added: str
    files: int
    chunks_filled: int
    model_rate: float  # chunks/s: the model encoding the same texts, nothing else running
    fill_rate: float  # chunks/s: the serving process's background fill, nothing else running
    fill_rate_searching: float  # chunks/s: the same, with searches running in the foreground
    idle: Latency
    during_fill: Latency
    load_average: tuple[float, float, float]


def _latency(times: Sequence[tuple[float, float]]) -> Latency:
    totals = sorted(t for t, _ in times)
    reranks = sorted(r for _, r in times)
    return Latency(
        searches=len(times),
        p50_ms=round(statistics.median(totals), 1),
        p95_ms=round(float(np.percentile(totals, 95)), 1),
        rerank_p50_ms=round(statistics.median(reranks), 1),
        rerank_p95_ms=round(float(np.percentile(reranks, 95)), 1),
    )


def _search(runtime, question: str) -> tuple[float, float]:
    response = runtime.search.search(SearchRequest(query=question), _IDENTITY)
    if not response.rerank.applied:
        raise RuntimeError(f"the reranker did not run: {response.rerank.note}")
    return response.timings_ms["total"], response.timings_ms["rerank"]


def bench_fill(
    settings: Settings, base: Path, add: Path, files: int, log: Callable[[str], None] = lambda m: None
) -> FillBench:
    from retrieval.index_schema import passage_text
    from runtime import build_runtime

    with tempfile.TemporaryDirectory(prefix="cairn-bench-fill-") as tmp:
        folder = Path(tmp) / "added"
        folder.mkdir()
        for path in sorted(p for p in add.rglob("*") if p.is_file())[:files]:
            shutil.copy(path, folder / path.name)
        local = settings.model_copy(update={"data_dir": Path(tmp) / "index", "qdrant_url": None})
        runtime = build_runtime(local)
        try:
            jobs = runtime.ingest_jobs
            job = jobs.wait(jobs.submit(base).id)
            if job.error:
                raise RuntimeError(f"ingesting {base} failed: {job.error.message}")
            jobs.fill_in_background()
            if jobs.wait_fill().state != "complete":
                raise RuntimeError(f"filling {base}'s vectors failed: {jobs.fill_status().error}")
            log(f"{base} indexed and filled")

            for question in QUESTIONS:  # warm: models loaded, first calls paid
                _search(runtime, question)
            idle = [_search(runtime, QUESTIONS[i % len(QUESTIONS)]) for i in range(60)]
            log(f"idle: {_latency(idle)}")

            # the new documents, in two halves: each ingested without its vectors, then filled,
            # the first with nothing else running, the second while searches run
            names = sorted(p.name for p in folder.iterdir())
            halves = [Path(tmp) / "added-alone", Path(tmp) / "added-searching"]
            for half, chosen in zip(halves, (names[: len(names) // 2], names[len(names) // 2 :])):
                half.mkdir()
                for name in chosen:
                    shutil.move(folder / name, half / name)
            rates, during = [], []
            for half in halves:
                jobs.wait(jobs.submit(half, source=half.name, delete_missing=False).id)
                before = jobs.fill_status()
                started = time.perf_counter()
                if half.name == "added-alone":
                    jobs.wait_fill()
                else:
                    while not jobs.fill_status().finished:
                        during.append(_search(runtime, QUESTIONS[len(during) % len(QUESTIONS)]))
                seconds = time.perf_counter() - started
                filled = jobs.fill_status().filled - before.filled
                rates.append(filled / seconds if seconds else 0.0)
                log(f"{half.name}: filled {filled} chunks in {seconds:.0f} s")

            # the model alone on the same texts (the new chunks, as the fill read them)
            added = [p for p in runtime.store.scroll(local.collection) if p.payload.get("source", "").startswith("added")]
            texts = [passage_text(p.payload["title"], p.payload["section"], p.payload["text"]) for p in added]
            started = time.perf_counter()
            runtime.reranker.encoder.encode_documents(texts)
            model_rate = len(texts) / (time.perf_counter() - started)
        finally:
            runtime.close()
    return FillBench(
        base=str(base),
        added=str(add),
        files=files,
        chunks_filled=len(texts),
        model_rate=round(model_rate, 2),
        fill_rate=round(rates[0], 2),
        fill_rate_searching=round(rates[1], 2),
        idle=_latency(idle),
        during_fill=_latency(during) if during else _latency(idle[:1]),
        load_average=os.getloadavg(),
    )


def markdown(bench: FillBench) -> str:
    share = bench.fill_rate / bench.model_rate if bench.model_rate else 0.0
    rows = [
        f"Served index: `{bench.base}` (vectors filled); added while serving: {bench.files} files of "
        f"`{bench.added}`, {bench.chunks_filled} chunks filled in the background (nice 10); searches use the "
        "default reranker and the served index's questions.",
        "",
        f"- Fill rate **{bench.fill_rate} chunks/s** against the model's own **{bench.model_rate} chunks/s** on "
        f"the same texts: **{share:.0%}** (half the added files, nothing else running).",
        f"- While searches ran back to back in the foreground (the other half): {bench.fill_rate_searching} "
        "chunks/s: the fill yields the cores to them.",
        "",
        "| searches | n | total p50 / p95 ms | rerank p50 / p95 ms |",
        "|---|---:|---:|---:|",
    ]
    for name, row in (("idle", bench.idle), ("during the fill", bench.during_fill)):
        rows.append(f"| {name} | {row.searches} | {row.p50_ms} / {row.p95_ms} | {row.rerank_p50_ms} / {row.rerank_p95_ms} |")
    rows += ["", f"Load average at the end: {', '.join(f'{x:.2f}' for x in bench.load_average)}."]
    return "\n".join(rows)


def register(bench_app) -> None:
    """`cairn bench fill`, added to the evals part's `cairn bench` group."""
    import typer
    from rich.console import Console

    @bench_app.command("fill")
    def bench_fill_command(
        base: Path = typer.Option(Path("data/sample"), "--base", help="The corpus the served index holds (filled)."),
        add: Path = typer.Option(
            Path("../shared/evalsets/python-faq/corpus"), "--add", help="A folder whose files are added while serving."
        ),
        files: int = typer.Option(60, "--files", min=1, help="How many of --add's files to add."),
        out: Path = typer.Option(Path("evals/reports/bench"), "--out", help="bench report folder"),
    ) -> None:
        """The reranking vectors' background fill: its rate, and search latency while it runs."""
        from evals.bench_report import rebuild, save_section
        from retrieval.settings import get_settings

        for folder, option in ((base, "--base"), (add, "--add")):
            if not folder.is_dir():
                raise typer.BadParameter(f"{folder} is not a folder", param_hint=option)
        progress = Console(stderr=True)
        bench = bench_fill(get_settings(), base, add, files, log=lambda m: progress.print(m, highlight=False))
        text = markdown(bench)
        command = f"cairn bench fill --base {base} --add {add} --files {files}"
        save_section(out, "fill", "Reranking vectors: background fill", text, asdict(bench), command)
        Console().print(text)
        Console().print(f"report: {rebuild(out)}")

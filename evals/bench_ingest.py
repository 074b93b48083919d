"""Ingest throughput on a folder: how close the pipeline runs to the speed of its embedding model.

Measured in one process, models loaded before any clock starts:
- the pipeline's chunks/s on a first run into an empty, temporary index;
- the embedding model's chunks/s on exactly the texts the pipeline embedded, alone;
- their ratio (1.0 = parsing, chunking, BM25 and writes cost nothing on top of embedding);
- an unchanged re-run's time as a share of the first (incremental skip);
- peak RSS of this process and of the parser workers (sampled every 0.1 s during the runs).
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import psutil

from ingest.pipeline import IngestPipeline
from retrieval.encoders import DenseEncoder, SparseEncoder
from retrieval.settings import Settings
from retrieval.store.edge import EdgeStore

BENCH_COLLECTION = "bench"


@dataclass
class IngestBench:
    folder: str
    files: int
    corpus_mb: float
    chunks: int
    failed_files: int
    first_run_s: float
    pipeline_chunks_per_s: float
    embedding_s: float  # embedding the same texts alone
    embedding_chunks_per_s: float
    throughput_ratio: float  # pipeline / embedding alone
    dense_share_of_run: float  # time inside the dense encoder during the first run / the run
    rerun_s: float
    rerun_share: float  # unchanged re-run / first run
    peak_rss_mb: float
    peak_rss_parser_mb: float
    embedding_model: str
    chunk_tokens: int
    parse_workers: int


class _TappedEncoder:
    """The real dense encoder, noting which texts it embedded and how long that took."""

    def __init__(self, inner: DenseEncoder) -> None:
        self._inner = inner
        self.texts: list[str] = []
        self.seconds = 0.0

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def encode_documents(self, texts: Sequence[str]):
        start = time.perf_counter()
        vectors = self._inner.encode_documents(texts)
        self.seconds += time.perf_counter() - start
        self.texts.extend(texts)
        return vectors


class _PeakMemory:
    """Samples the resident memory of this process and, summed, of its children (the parser
    workers) while a run goes on; keeps the peaks."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.own_mb = 0.0
        self.children_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while True:
            children = 0
            for child in me.children(recursive=True):
                try:
                    children += child.memory_info().rss
                except psutil.Error:  # a worker that just ended
                    pass
            self.own_mb = max(self.own_mb, me.memory_info().rss / 2**20)
            self.children_mb = max(self.children_mb, children / 2**20)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> "_PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def bench_ingest(folder: Path, settings: Settings, dense: DenseEncoder | None = None) -> IngestBench:
    label, folder = str(folder), Path(folder).resolve()
    dense = dense or DenseEncoder(settings.embedding_model, batch_size=settings.embed_batch_size)
    sparse = SparseEncoder(avg_len=settings.bm25_avg_len)
    dense.encode_documents(["warm-up"])  # first-call set-up stays out of the timings
    tapped = _TappedEncoder(dense)
    files = [p for p in folder.rglob("*") if p.is_file()]
    with tempfile.TemporaryDirectory(prefix="cairn-bench-") as tmp, _PeakMemory() as memory:
        local = settings.model_copy(update={"data_dir": Path(tmp), "collection": BENCH_COLLECTION, "qdrant_url": None})
        store = EdgeStore(Path(tmp))
        try:
            pipeline = IngestPipeline(local, store, tapped, sparse)  # type: ignore[arg-type]
            start = time.perf_counter()
            first = pipeline.run(folder)
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            pipeline.run(folder)
            rerun_s = time.perf_counter() - start
        finally:
            store.close()

    texts = tapped.texts
    start = time.perf_counter()
    dense.encode_documents(texts)
    embed_s = time.perf_counter() - start
    chunks = len(texts)
    pipeline_cps = chunks / first_s if first_s else 0.0
    embed_cps = chunks / embed_s if embed_s else 0.0
    return IngestBench(
        folder=label,
        files=len(files),
        corpus_mb=round(sum(p.stat().st_size for p in files) / 1e6, 2),
        chunks=chunks,
        failed_files=first.files.failed,
        first_run_s=round(first_s, 2),
        pipeline_chunks_per_s=round(pipeline_cps, 1),
        embedding_s=round(embed_s, 2),
        embedding_chunks_per_s=round(embed_cps, 1),
        throughput_ratio=round(pipeline_cps / embed_cps, 3) if embed_cps else 0.0,
        dense_share_of_run=round(tapped.seconds / first_s, 3) if first_s else 0.0,
        rerun_s=round(rerun_s, 2),
        rerun_share=round(rerun_s / first_s, 3) if first_s else 0.0,
        peak_rss_mb=round(memory.own_mb, 1),
        peak_rss_parser_mb=round(memory.children_mb, 1),
        embedding_model=settings.embedding_model,
        chunk_tokens=settings.chunk_tokens,
        parse_workers=settings.parse_workers,
    )


def markdown(bench: IngestBench) -> str:
    rows = [
        ("folder", f"`{bench.folder}` ({bench.files} files, {bench.corpus_mb} MB)"),
        ("chunks", f"{bench.chunks} ({bench.failed_files} files failed)"),
        ("pipeline, first run", f"{bench.first_run_s} s = **{bench.pipeline_chunks_per_s} chunks/s**"),
        ("embedding alone, same texts", f"{bench.embedding_s} s = **{bench.embedding_chunks_per_s} chunks/s**"),
        ("throughput ratio (pipeline / embedding)", f"**{bench.throughput_ratio}**"),
        ("time inside the dense encoder during the run", f"{bench.dense_share_of_run:.0%}"),
        ("unchanged re-run", f"{bench.rerun_s} s = {bench.rerun_share:.1%} of the first run"),
        ("peak RSS (this process / parser workers)", f"{bench.peak_rss_mb} MB / {bench.peak_rss_parser_mb} MB"),
        (
            "settings",
            f"{bench.embedding_model}, chunk_tokens={bench.chunk_tokens}, parse_workers={bench.parse_workers}",
        ),
    ]
    lines = ["| measure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def as_dict(bench: IngestBench) -> dict:
    return asdict(bench)

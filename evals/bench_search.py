"""Search latency at scale: p50/p95 per stage over 100+ queries, at ~10k and ~100k chunks.

How the big indexes are made: the chunks of a real embedded index (e.g. python-faq after
`cairn ingest`) are read with the vectors ingestion stored, then replicated with distinct ids
into a temporary embedded collection until it holds N chunks. Copies get small Gaussian noise
on their dense vector (so they are not exact ties) and the same BM25 vector; encoding 100k
texts on 2 cores would take longer than the benchmark itself.

Each size is measured through the real `SearchService` (encode, one batched Qdrant Query API
call, rerank), with and without a reranker. The embedding reranker (the default) is measured
each way it can run: reading the chunk vectors the fill stored in the index (copied into the
replica with the same noise as the dense vectors) at depth 20 and 50, and encoding each
candidate at query time at depth 10 (on fewer queries: it takes seconds each; copies share
their text, so its in-memory cache flatters it at 100k). Without a trained cross-encoder configured
(CAIRN_RERANKER_MODEL), the reranker timed is a speed-equivalent stand-in: the packaged MiniLM
with an untrained classification head, same architecture and input length as a MiniLM
cross-encoder. Its scores are meaningless; only its time is reported.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from retrieval.access import Identity
from retrieval.encoders import build_encoders
from retrieval.index_schema import ChunkPoint
from retrieval.rerank import CrossEncoderReranker, EmbeddingReranker, NoReranker, Reranker, build_reranker
from retrieval.search_schemas import SearchRequest
from retrieval.service import SearchService
from retrieval.settings import DEFAULT_EMBEDDING_MODEL, Settings
from retrieval.store.edge import EdgeStore

BENCH_COLLECTION = "bench"
STAGES = ("encode", "search", "rerank", "total")
_IDENTITY = Identity("cairn-bench", ("public",))
_NOISE = 0.02  # std of the noise added to each copy's dense vector (before re-normalising)
_WARMUP = 5


@dataclass
class StageLatency:
    p50_ms: float
    p95_ms: float


@dataclass
class SearchBenchRow:
    chunks: int
    reranker: str  # "none", or the reranker's name (+ how it ran, or " (untrained stand-in)")
    rerank_depth: int
    queries: int
    stages: dict[str, StageLatency]


@dataclass
class SearchBench:
    source: str
    source_chunks: int
    build_seconds: dict[int, float]
    optimized: bool
    rows: list[SearchBenchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _SourceChunk:
    id: str
    dense: np.ndarray
    sparse: object
    payload: dict
    named: dict[str, np.ndarray]  # the reranking model's vector, where the fill stored it


@dataclass(frozen=True)
class _RerankVariant:
    label: str
    reranker: Reranker
    depth: int
    stored: bool  # read the stored vectors (False: encode every candidate at query time)
    queries: int  # how many of the queries it is timed on


def read_source(settings: Settings) -> list[_SourceChunk]:
    """Every chunk of the configured embedded index, with the vectors ingestion stored."""
    store = EdgeStore(settings.data_dir)
    try:
        chunks = [
            _SourceChunk(c.id, np.asarray(c.dense), c.sparse, c.payload, {k: np.asarray(v) for k, v in c.named.items()})
            for c in store.scroll_chunks(settings.collection)
        ]
    finally:
        store.close()
    if not chunks:
        raise SystemExit(
            f"no chunks in collection '{settings.collection}' at {settings.data_dir}: run `cairn ingest FOLDER` first"
        )
    return chunks


def _noisy(vector: np.ndarray, rng: np.random.Generator, copy: int) -> np.ndarray:
    noisy = vector if copy == 0 else vector + rng.normal(0.0, _NOISE, vector.shape)
    return noisy / np.linalg.norm(noisy)


def build_replica(store: EdgeStore, source: Sequence[_SourceChunk], size: int, seed: int = 13) -> float:
    """A collection of ``size`` chunks: copies of ``source`` with distinct ids and documents."""
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    store.create_chunk_collection(BENCH_COLLECTION, int(source[0].dense.shape[0]))
    named_sizes = {name: int(v.shape[0]) for chunk in source for name, v in chunk.named.items()}
    for name, dim in named_sizes.items():
        store.add_vector(BENCH_COLLECTION, name, dim)
    batch: list[ChunkPoint] = []
    for n in range(size):
        chunk = source[n % len(source)]
        copy = n // len(source)
        payload = dict(chunk.payload)
        if copy:
            payload["doc_id"] = f"{payload.get('doc_id', '')}#{copy}"
        named = {name: _noisy(v, rng, copy).tolist() for name, v in chunk.named.items()}
        point_id = str(uuid.uuid5(uuid.UUID(chunk.id), str(copy)))
        batch.append(ChunkPoint(point_id, _noisy(chunk.dense, rng, copy).tolist(), chunk.sparse, payload, named))
        if len(batch) == 1000:
            store.upsert_chunks(BENCH_COLLECTION, batch)
            batch = []
    store.upsert_chunks(BENCH_COLLECTION, batch)
    store.flush()
    return time.perf_counter() - started


def _percentiles(values: list[float]) -> StageLatency:
    ordered = sorted(values)
    p95 = float(np.percentile(ordered, 95)) if ordered else 0.0
    return StageLatency(p50_ms=round(statistics.median(ordered), 2), p95_ms=round(p95, 2))


def measure(service: SearchService, queries: Sequence[str], rerank: bool, top_k: int) -> dict[str, StageLatency]:
    for query in queries[:_WARMUP]:
        service.search(SearchRequest(query=query, top_k=top_k, rerank=rerank), _IDENTITY)
    timings: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for query in queries:
        response = service.search(SearchRequest(query=query, top_k=top_k, rerank=rerank), _IDENTITY)
        if rerank and not response.rerank.applied:
            raise RuntimeError(f"the reranker did not run: {response.rerank.note}")
        for stage in STAGES:
            timings[stage].append(response.timings_ms.get(stage, 0.0))
    return {stage: _percentiles(values) for stage, values in timings.items()}


def timing_reranker(settings: Settings) -> tuple[Reranker, str]:
    """The configured reranker when it is usable, else the untrained speed-equivalent stand-in."""
    configured = build_reranker(settings.rerank)
    if configured.available:
        return configured, configured.name
    stand_in = CrossEncoderReranker(
        DEFAULT_EMBEDDING_MODEL,
        max_length=settings.rerank_max_length,
        batch_size=settings.rerank_batch_size,
        allow_untrained_head=True,
    )
    return stand_in, f"{stand_in.name} (untrained stand-in, timing only)"


def rerank_variants(
    settings: Settings, reranker: Reranker, label: str, source: Sequence[_SourceChunk], queries: int
) -> list[_RerankVariant]:
    """Each way the reranker runs: the embedding reranker from stored vectors (depth 20 and 50,
    when the source index holds them) and encoding per query (depth 10, on a sixth of the
    queries); any other reranker at the configured depth."""
    if not isinstance(reranker, EmbeddingReranker):
        return [_RerankVariant(label, reranker, settings.rerank_depth, False, queries)]
    variants = []
    if any(reranker.vector_name in chunk.named for chunk in source):
        variants += [_RerankVariant(f"{label} (stored vectors)", reranker, depth, True, queries) for depth in (20, 50)]
    variants.append(_RerankVariant(f"{label} (encoded per query)", reranker, 10, False, max(queries // 6, _WARMUP + 5)))
    return variants


def load_queries(path: Path | None, source: Sequence[_SourceChunk], count: int, seed: int = 7) -> list[str]:
    """Queries from a JSONL of {"id", "text"}, else the first sentence of random chunks."""
    if path is not None:
        rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        texts = [row["text"] for row in rows]
    else:
        rng = random.Random(seed)
        texts = [
            c.payload.get("text", "").split(". ")[0][:200] for c in rng.sample(list(source), min(count, len(source)))
        ]
    texts = [t for t in texts if t.strip()]
    while len(texts) < count:  # a short query file is cycled to reach the requested count
        texts += texts[: count - len(texts)]
    return texts[:count]


def bench_search(
    settings: Settings,
    sizes: Sequence[int] = (10_000, 100_000),
    queries_file: Path | None = None,
    query_count: int = 120,
    optimize: bool = False,
    top_k: int = 10,
    log: Callable[[str], None] = lambda message: None,
) -> SearchBench:
    dense, sparse = build_encoders(settings.models)
    source = read_source(settings)
    log(f"read {len(source):,} chunks from {settings.data_dir} / {settings.collection}")
    queries = load_queries(queries_file, source, query_count)
    reranker, reranker_label = timing_reranker(settings)
    bench = SearchBench(
        source=f"{settings.data_dir} / {settings.collection}",
        source_chunks=len(source),
        build_seconds={},
        optimized=optimize,
    )
    if "stand-in" in reranker_label:
        bench.notes.append(
            "No trained cross-encoder is configured: rerank times use MiniLM-L6 with an untrained head "
            f"(same size and max_length={settings.rerank_max_length}); its scores are not used."
        )
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="cairn-bench-search-") as tmp:
            store = EdgeStore(Path(tmp))
            try:
                bench.build_seconds[size] = round(build_replica(store, source, size), 1)
                log(f"{size:,} chunks written in {bench.build_seconds[size]} s")
                if optimize:
                    started = time.perf_counter()
                    store.optimize(BENCH_COLLECTION)
                    bench.notes.append(f"optimize() at {size} chunks took {time.perf_counter() - started:.0f} s")
                plain = _RerankVariant("none", NoReranker(), 0, False, len(queries))
                for variant in [plain, *rerank_variants(settings, reranker, reranker_label, source, len(queries))]:
                    bench_settings = settings.model_copy(
                        update={
                            "collection": BENCH_COLLECTION,
                            "rerank_depth": max(variant.depth, 1),
                            "rerank_stored_vectors": variant.stored,
                        }
                    )
                    if isinstance(variant.reranker, EmbeddingReranker):
                        variant.reranker.clear_cache()  # each row starts with nothing encoded
                    service = SearchService(bench_settings, store, dense, sparse, variant.reranker)
                    timed = queries[: variant.queries]
                    stages = measure(service, timed, variant.depth > 0, top_k)
                    log(
                        f"{size:,} chunks, {variant.label} depth {variant.depth}: total p95 {stages['total'].p95_ms} ms"
                    )
                    bench.rows.append(
                        SearchBenchRow(
                            chunks=store.count(BENCH_COLLECTION),
                            reranker=variant.label,
                            rerank_depth=variant.depth,
                            queries=len(timed),
                            stages=stages,
                        )
                    )
            finally:
                store.close()
    return bench


def markdown(bench: SearchBench) -> str:
    hnsw = "built (optimize)" if bench.optimized else "not built (exact search)"
    lines = [
        f"Source: {bench.source_chunks} chunks from `{bench.source}`, replicated with distinct ids "
        f"(dense noise σ={_NOISE}); embedded store, HNSW {hnsw}.",
        "",
        "| chunks | reranker | depth | queries | encode p50/p95 | search p50/p95 | rerank p50/p95 | total p50/p95 |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in bench.rows:
        cells = [f"{row.stages[s].p50_ms:.1f} / {row.stages[s].p95_ms:.1f}" for s in STAGES]
        lines.append(
            f"| {row.chunks:,} | {row.reranker} | {row.rerank_depth} | {row.queries} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Times in ms. Build times: " + ", ".join(f"{n:,} chunks {s} s" for n, s in bench.build_seconds.items()),
    ]
    lines += [f"- {note}" for note in bench.notes]
    return "\n".join(lines)


def as_dict(bench: SearchBench) -> dict:
    return asdict(bench)


def register(bench_app) -> None:
    """`cairn bench search`, added to the evals part's `cairn bench` group."""
    import typer
    from rich.console import Console

    @bench_app.command("search")
    def bench_search_command(
        sizes: str = typer.Option("10000,100000", "--sizes", help="comma-separated index sizes in chunks"),
        queries: Path = typer.Option(
            None, "--queries", help='JSONL of {"id", "text"} (default: sentences from the index)'
        ),
        query_count: int = typer.Option(120, "--query-count", min=10),
        optimize: bool = typer.Option(False, "--optimize", help="build HNSW before measuring (slow at 100k: minutes)"),
        out: Path = typer.Option(Path("evals/reports/bench"), "--out", help="bench report folder"),
    ) -> None:
        """Search latency per stage (p50/p95) at several index sizes, with and without reranking.

        Reads the chunks of the configured index (CAIRN_DATA_DIR / CAIRN_COLLECTION)."""
        from evals.bench_report import rebuild, save_section
        from retrieval.settings import get_settings

        try:
            size_list = [int(s) for s in sizes.split(",") if s.strip()]
        except ValueError:
            raise typer.BadParameter(f"--sizes must be integers separated by commas, got {sizes!r}") from None
        progress = Console(stderr=True)
        bench = bench_search(
            get_settings(), size_list, queries, query_count, optimize, log=lambda m: progress.print(m, highlight=False)
        )
        text = markdown(bench)
        command = "cairn bench search --sizes " + sizes + (f" --queries {queries}" if queries else "")
        save_section(out, "search", "Search latency", text, as_dict(bench), command)
        Console().print(text)
        Console().print(f"report: {rebuild(out)}")

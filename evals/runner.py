"""One `cairn eval` run: index the set once per ingest fingerprint, ask every query in every
configuration through the real `SearchService`, run the llama-index baseline, score it all.

Each query is asked twice per configuration:
- a deep search (``depth`` chunks, default 100) for the document metrics, so that Recall@100
  has 100 files to look at (the service raises each retriever's candidates to at least
  ``depth``, so ``prefetch_limit`` below ``depth`` only shows in the second call);
- the production call, `SearchService.context` with the configuration's own top_k,
  candidates and budget: its hits give passage_hit, its blocks context recall, its timings
  the latency per stage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.progress import Progress, TaskID

from evals.answer_eval import AnswerRecord, AnswerSummary, answer_one, sample_questions, summarise
from evals.baseline_llamaindex import LlamaIndexBaseline, baseline_folder, parsed_corpus
from evals.configs import LLAMAINDEX, EvalConfig
from evals.dataset import EvalSet, corpus_hash
from evals.index_cache import EVAL_COLLECTION, CachedIndex, IndexCache
from evals.metrics import (
    QueryOutcome,
    RetrievedText,
    dedupe_to_files,
    latency_percentiles,
    mean_scores,
    score_outcomes,
)
from evals.significance import Comparison, compare_to_reference
from ingest.pipeline import fingerprint_of
from retrieval.access import Identity
from retrieval.encoders import DenseEncoder, SparseEncoder
from ingest.rerank_fill import RerankVectorFill
from retrieval.rerank import EmbeddingReranker, Reranker, build_reranker
from retrieval.search_schemas import ContextRequest, SearchRequest
from retrieval.service import SearchService
from retrieval.settings import Settings

DEFAULT_DEPTH = 100
# Eval corpora carry no cairn-acl.yaml, so every file is public.
EVAL_IDENTITY = Identity(user="cairn-eval", groups=("public",))


@dataclass
class IndexInfo:
    folder: str
    key: str
    reused: bool
    chunks: int
    files: int
    ingest_settings: dict[str, Any]
    failures: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ConfigResult:
    config: EvalConfig
    per_query: dict[str, dict[str, float]]  # metric -> query id -> value
    means: dict[str, float]
    latency_ms: dict[str, dict[str, float]]  # stage -> {"p50", "p95"}
    rankings: dict[str, list[str]]  # query id -> deduplicated files, best first
    index: IndexInfo | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class EvalRun:
    set_name: str
    set_root: str
    corpus_hash: str
    queries: int
    depth: int
    top_k: int
    reference: str
    results: list[ConfigResult]
    significance: dict[str, dict[str, Comparison]]  # config -> metric -> vs reference
    settings: dict[str, Any]
    started_at: str
    seconds: float

    def result(self, name: str) -> ConfigResult:
        return next(r for r in self.results if r.config.name == name)


class _IngestBar:
    """Feeds the ingest pipeline's progress into a rich progress bar."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.task = progress.add_task(f"{label}: checking files", total=None)
        self.label = label

    def planned(self, files_to_parse: int, files_total: int) -> None:
        self.progress.update(
            self.task, total=files_to_parse, description=f"{self.label}: indexing {files_to_parse}/{files_total} files"
        )

    def file_done(self, rel_path: str, chunks: int, failed: bool) -> None:
        self.progress.advance(self.task)


class EvalRunner:
    def __init__(
        self,
        settings: Settings,
        cache: IndexCache,
        depth: int = DEFAULT_DEPTH,
        progress: Progress | None = None,
        dense: DenseEncoder | None = None,
    ) -> None:
        """``dense``: an already loaded encoder to reuse for its model (saves a load)."""
        self.settings = settings
        self.cache = cache
        self.depth = depth
        self.progress = progress
        self._dense: dict[str, DenseEncoder] = {dense.model_name: dense} if dense else {}
        self._sparse: dict[float, SparseEncoder] = {}
        self._rerankers: dict[object, Reranker] = {}
        self.answer_records: dict[str, list[AnswerRecord]] = {}  # config -> the answers of the last answer eval

    # --- shared models -----------------------------------------------------------------
    def dense(self, settings: Settings) -> DenseEncoder:
        if settings.embedding_model not in self._dense:
            self._dense[settings.embedding_model] = DenseEncoder(
                settings.embedding_model, batch_size=settings.embed_batch_size
            )
        return self._dense[settings.embedding_model]

    def sparse(self, settings: Settings) -> SparseEncoder:
        if settings.bm25_avg_len not in self._sparse:
            self._sparse[settings.bm25_avg_len] = SparseEncoder(avg_len=settings.bm25_avg_len)
        return self._sparse[settings.bm25_avg_len]

    def reranker(self, settings: Settings) -> Reranker:
        key = settings.rerank  # every setting the reranker is built from
        if key not in self._rerankers:
            self._rerankers[key] = build_reranker(key)
        return self._rerankers[key]

    # --- the run -----------------------------------------------------------------------
    def run(self, evalset: EvalSet, configs: list[EvalConfig], reference: str) -> EvalRun:
        started, clock = datetime.now(timezone.utc), time.perf_counter()
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ValueError(f"configuration names repeat: {', '.join(n for n in names if names.count(n) > 1)}")
        if reference not in names:
            raise ValueError(f"the reference configuration '{reference}' is not among {', '.join(names)}")
        digest = corpus_hash(evalset.corpus_dir)

        outcomes: dict[str, list[QueryOutcome]] = {}
        indexes: dict[str, IndexInfo] = {}
        notes: dict[str, list[str]] = {c.name: [] for c in configs}
        cairn = [c for c in configs if c.kind == "cairn"]
        groups: dict[str, list[EvalConfig]] = {}
        for config in cairn:
            groups.setdefault(fingerprint_of(config.settings(self.settings)), []).append(config)
        for group in groups.values():
            group_settings = group[0].settings(self.settings)
            index = self._open_index(evalset, digest, group_settings)
            try:
                info = IndexInfo(
                    folder=str(index.folder),
                    key=index.key,
                    reused=index.reused,
                    chunks=index.chunks,
                    files=index.files,
                    ingest_settings=index.settings.ingest_fingerprint(),
                    failures=index.failures,
                )
                for config in group:
                    indexes[config.name] = info
                    outcomes[config.name] = self._ask_cairn(evalset, config, index, notes[config.name])
            finally:
                index.close()
        for config in configs:
            if config.kind == "llamaindex":
                outcomes[config.name] = self._ask_llamaindex(evalset, digest, config, notes[config.name])

        k = self.settings.top_k
        results = []
        for config in configs:
            per_query = score_outcomes(evalset, outcomes[config.name], k)
            results.append(
                ConfigResult(
                    config=config,
                    per_query=per_query,
                    means=mean_scores(per_query),
                    latency_ms=latency_percentiles(outcomes[config.name]),
                    rankings={o.query_id: dedupe_to_files(o.ranked_paths) for o in outcomes[config.name]},
                    index=indexes.get(config.name),
                    notes=notes[config.name],
                )
            )
        significance = compare_to_reference(
            evalset.qrels_dict(), {r.config.name: r.rankings for r in results}, reference
        )
        return EvalRun(
            set_name=evalset.name,
            set_root=str(evalset.root),
            corpus_hash=digest,
            queries=len(evalset.queries),
            depth=self.depth,
            top_k=k,
            reference=reference,
            results=results,
            significance=significance,
            settings=_visible_settings(self.settings),
            started_at=started.isoformat(timespec="seconds"),
            seconds=round(time.perf_counter() - clock, 1),
        )

    # --- answers -----------------------------------------------------------------------
    def answer(self, evalset: EvalSet, configs: list[EvalConfig], n: int, seed: int) -> list[AnswerSummary]:
        """The answer eval (evals/answer_eval.py) for each Cairn configuration, on the same
        ``n`` questions drawn with ``seed``, through the real answer service."""
        from answers.schemas import AnswerRequest
        from answers.service import AnswerService

        samples = sample_questions(evalset, n, seed)
        digest = corpus_hash(evalset.corpus_dir)
        summaries = []
        for config in (c for c in configs if c.kind == "cairn"):
            index = self._open_index(evalset, digest, config.settings(self.settings))
            try:
                settings = config.settings(self.settings).model_copy(
                    update={"data_dir": index.folder, "collection": EVAL_COLLECTION, "qdrant_url": None}
                )
                reranker = self.reranker(settings)
                self._fill_rerank_vectors(index, settings, reranker, config.rerank)
                search = SearchService(settings, index.store, self.dense(settings), self.sparse(settings), reranker)
                answers = AnswerService(search, settings.answers)
                request = AnswerRequest(question="-", mode=config.mode, rerank=config.rerank)
                task = self._task(f"answering {config.name}", len(samples))
                records = []
                for sample in samples:
                    records.append(answer_one(answers, EVAL_IDENTITY, sample, request))
                    self._advance(task)
                summaries.append(summarise(config.name, seed, records))
                self.answer_records[config.name] = records
            finally:
                index.close()
        return summaries

    def _open_index(self, evalset: EvalSet, digest: str, settings: Settings) -> CachedIndex:
        bar = _IngestBar(self.progress, f"index {evalset.name}") if self.progress else None
        return self.cache.open(evalset, digest, settings, self.dense(settings), self.sparse(settings), progress=bar)

    def _fill_rerank_vectors(self, index: CachedIndex, settings: Settings, reranker: Reranker, rerank: bool) -> None:
        """The reranking model's vectors stored in the cached index before its rows are timed, as
        `cairn ingest` leaves a production index (once per index: later runs find them filled)."""
        if not (rerank and settings.rerank_stored_vectors and isinstance(reranker, EmbeddingReranker)):
            return
        if reranker.encoder is None:
            return
        fill = RerankVectorFill(index.store, EVAL_COLLECTION, reranker.encoder)
        fill.prepare()
        if fill.pending() == 0:
            return
        task = self._task(f"index {index.folder.name}: reranking vectors", fill.progress().chunks)
        runner = self

        class Bar:
            def filled(self, done: int, total: int) -> None:
                if runner.progress and task is not None:
                    runner.progress.update(task, completed=done, total=total)

        fill.run(Bar())

    def _task(self, description: str, total: int) -> TaskID | None:
        return self.progress.add_task(description, total=total) if self.progress else None

    def _advance(self, task: TaskID | None) -> None:
        if self.progress and task is not None:
            self.progress.advance(task)

    def _ask_cairn(
        self, evalset: EvalSet, config: EvalConfig, index: CachedIndex, notes: list[str]
    ) -> list[QueryOutcome]:
        settings = config.settings(self.settings).model_copy(
            update={"data_dir": index.folder, "collection": EVAL_COLLECTION, "qdrant_url": None}
        )
        reranker = self.reranker(settings)
        self._fill_rerank_vectors(index, settings, reranker, config.rerank)
        service = SearchService(settings, index.store, self.dense(settings), self.sparse(settings), reranker)
        if config.rerank and not reranker.available:
            notes.append(f"reranker unavailable: {reranker.unavailable_reason}")
        task = self._task(f"querying {config.name}", len(evalset.queries))
        outcomes = []
        for query in evalset.queries:
            # The production call first, so its timings are a first-time query's: the deep
            # search after it finds the reranker's passages cached.
            shown = service.context(
                ContextRequest(query=query.text, mode=config.mode, rerank=config.rerank), EVAL_IDENTITY
            )
            deep = service.search(
                SearchRequest(query=query.text, top_k=self.depth, mode=config.mode, rerank=config.rerank), EVAL_IDENTITY
            )
            outcomes.append(
                QueryOutcome(
                    query_id=query.id,
                    ranked_paths=[h.path for h in deep.hits],
                    top_chunks=[RetrievedText(h.path, h.text) for h in shown.hits],
                    context=[RetrievedText(b.path, b.text) for b in shown.blocks],
                    timings_ms=dict(shown.timings_ms),
                )
            )
            self._advance(task)
        return outcomes

    def _ask_llamaindex(
        self, evalset: EvalSet, digest: str, config: EvalConfig, notes: list[str]
    ) -> list[QueryOutcome]:
        settings = config.settings(self.settings)
        parse_task = self._task("llama-index baseline: parsing", None)

        def parsed_one(total: int) -> None:
            if self.progress and parse_task is not None:
                self.progress.update(parse_task, total=total, advance=1)

        corpus = parsed_corpus(evalset, digest, settings, self.cache.root, on_file=parsed_one)
        if corpus.failures:
            notes.append(f"{len(corpus.failures)} file(s) not parsed: " + ", ".join(sorted(corpus.failures)[:5]))
        embed_task = self._task("llama-index baseline: embedding", None)
        baseline = LlamaIndexBaseline(corpus, settings, baseline_folder(self.cache.root, evalset, digest, settings))
        if self.progress and embed_task is not None:
            self.progress.update(embed_task, total=1, completed=1)
        notes.append(f"{baseline.nodes} nodes" + (" (index reused)" if baseline.loaded else ""))
        task = self._task(f"querying {config.name}", len(evalset.queries))
        outcomes = []
        for query in evalset.queries:
            outcomes.append(baseline.retrieve(query.id, query.text, self.depth, settings.top_k))
            self._advance(task)
        return outcomes


def llamaindex_config(settings: Settings) -> EvalConfig:
    return EvalConfig(
        LLAMAINDEX,
        f"llama-index defaults: SentenceSplitter(1024/200), VectorStoreIndex, dense top-k, {settings.embedding_model}",
        kind="llamaindex",
        mode="dense",
    )


_REPORTED_SETTINGS = (
    "embedding_model",
    "chunk_tokens",
    "chunk_overlap",
    "bm25_avg_len",
    "prefetch_limit",
    "top_k",
    "fusion",
    "rrf_k",
    "rrf_dense_weight",
    "rrf_sparse_weight",
    "doc_length_prior",
    "reranker",
    "reranker_embedding_model",
    "reranker_model",
    "rerank_depth",
    "context_token_budget",
    "context_max_blocks",
    "context_neighbours",
    "context_max_blocks_per_doc",
    "context_min_score",
)


def _visible_settings(settings: Settings) -> dict[str, Any]:
    """The settings that shape retrieval (never secrets or local paths)."""
    return {name: getattr(settings, name) for name in _REPORTED_SETTINGS if hasattr(settings, name)}


def report_folder_default(set_name: str, partial: bool = False) -> Path:
    """``evals/reports/<set>/`` (committed) for a full run; a partial run (some rows, some
    queries) goes to the git-ignored ``evals/runs/<set>/`` so it never replaces the report."""
    return Path("evals/runs" if partial else "evals/reports") / set_name

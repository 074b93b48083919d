"""The composition root: the one place that builds Cairn's parts from settings, each given only
its own group. The CLI, the HTTP API, the chat page and the evals all start here.

    runtime = build_runtime(get_settings())
    runtime.search.search(request, identity); runtime.answers.stream(request, identity)
    runtime.ingest_jobs.submit(folder)  # the index's one writer, beside the searches
    runtime.close()
"""

from __future__ import annotations

import atexit
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from answers.answer_cache import AnswerCache
from answers.service import AnswerService, check_provider_names
from ingest.jobs import IngestJobs
from ingest.parser_pool import ParserPool
from ingest.watch import FolderWatcher
from retrieval.access import Identities
from retrieval.encoders import DenseEncoder, SparseEncoder, build_encoders
from retrieval.rerank import EmbeddingReranker, Reranker, build_reranker, stored_vector_model
from retrieval.service import SearchService
from retrieval.settings import Settings
from retrieval.store import IndexStore, check_dense_size, open_store
from runtime.holder import announce_holder, withdraw_holder


@dataclass
class Runtime:
    settings: Settings
    identities: Identities
    store: IndexStore
    dense: DenseEncoder
    sparse: SparseEncoder
    reranker: Reranker
    search: SearchService
    answers: AnswerService
    ingest_jobs: IngestJobs
    _announced: bool = field(default=False, repr=False)
    _watchers: list[FolderWatcher] = field(default_factory=list, repr=False)

    def announce(self, kind: Literal["api", "ui"], url: str | None = None) -> None:
        """Say next to an embedded index that this process holds it (and where it takes jobs),
        until it closes or exits; a server index has no lock, so nothing to say."""
        if self.settings.uses_server:
            return
        announce_holder(self.settings.data_dir, kind, self.settings.collection, url)
        if not self._announced:
            atexit.register(withdraw_holder, self.settings.data_dir)  # a page never closes its runtime
        self._announced = True

    def watch(self, folders: list[Path] | None = None) -> None:
        """Sync each folder now, then again after every burst of changes (CAIRN_WATCH_SOURCES by
        default; each is its own source, named after the folder)."""
        jobs, debounce = self.ingest_jobs, self.settings.watch_debounce_s
        roots = [Path(f).expanduser().resolve() for f in (self.settings.watch_sources if folders is None else folders)]
        names = [root.name for root in roots]
        if len(set(names)) != len(names):  # one source per name: each sync would drop the other's files
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(
                f"watched folders share the name(s) {', '.join(twice)}: a source is named after its folder; rename one"
            )
        for root in roots:
            if not root.is_dir():
                raise NotADirectoryError(f"{root} is not a folder: fix the path or create it")
        for root in roots:
            # watching starts first: a change made while the first sync runs gets a sync of its own
            watcher = FolderWatcher(root, lambda root=root: jobs.submit(root, kind="watch"), debounce)
            self._watchers.append(watcher.start())
            jobs.submit(root, kind="watch")

    def fill_rerank_vectors(self) -> None:
        """Store the reranking model's vector of every chunk in the background, between jobs (a
        serving process calls this; one-shot commands and evals fill or not as they choose)."""
        self.ingest_jobs.fill_in_background()

    def close(self) -> None:
        for watcher in self._watchers:
            watcher.stop()
        self.ingest_jobs.close()  # the running job stops between two files, before the store closes
        if self._announced:
            withdraw_holder(self.settings.data_dir)
        self.search.close()  # closes the store (an embedded index's lock goes with it)


def build_runtime(settings: Settings, store: IndexStore | None = None) -> Runtime:
    """Identities and provider names are checked before anything loads (a typo fails in
    milliseconds); then the index opens and the models load, once. ``store``: one already
    opened (e.g. the server backend through qdrant-client's local mode), closed with the runtime."""
    identities = Identities.from_settings(settings.service)
    check_provider_names(settings.answers.llm_providers)
    store = store if store is not None else open_store(settings.storage)
    try:
        dense, sparse = build_encoders(settings.models)
        check_dense_size(store, settings.collection, dense.model_name, dense.dimension)
        reranker = build_reranker(settings.rerank)
    except BaseException:
        store.close()  # the lock on an embedded index goes with it
        raise
    return assemble_runtime(settings, identities, store, dense, sparse, reranker)


def assemble_runtime(
    settings: Settings,
    identities: Identities,
    store: IndexStore,
    dense: DenseEncoder,
    sparse: SparseEncoder,
    reranker: Reranker,
    parser_pool: ParserPool | None = None,
) -> Runtime:
    """The services over an opened store and loaded models (build_runtime's second half; tests
    pass their own store, encoders and parser processes)."""
    search = SearchService(settings, store, dense, sparse, reranker)
    cache = None
    if settings.answer_cache_enabled:
        cache = AnswerCache(
            store, settings.collection, dense.encode_query, dense.dimension, settings.answer_cache_threshold,
            settings.answer_cache_max_entries, settings.answer_cache_ttl_s,
        )
    answers = AnswerService(search, settings.answers, cache)
    # searches and the jobs share one lock where the store takes one request at a time
    stored = stored_vector_model(settings.rerank) is not None
    rerank_encoder = reranker.encoder if stored and isinstance(reranker, EmbeddingReranker) else None
    ingest_jobs = IngestJobs(
        settings, store, dense, sparse, store_lock=search.read_lock, parser_pool=parser_pool, rerank_encoder=rerank_encoder
    )
    return Runtime(settings, identities, store, dense, sparse, reranker, search, answers, ingest_jobs)

"""The composition root: the one place that builds Cairn's parts from settings, each given only
its own group. The CLI, the HTTP API, the chat page and the evals all start here.

    runtime = build_runtime(get_settings())
    runtime.search.search(request, identity); runtime.answers.stream(request, identity)
    runtime.close()
"""

from __future__ import annotations

from dataclasses import dataclass

from answers.service import AnswerService, check_provider_names
from retrieval.access import Identities
from retrieval.encoders import DenseEncoder, SparseEncoder, build_encoders
from retrieval.rerank import Reranker, build_reranker
from retrieval.service import SearchService
from retrieval.settings import Settings
from retrieval.store import IndexStore, check_dense_size, open_store


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

    def close(self) -> None:
        self.search.close()  # closes the store (an embedded index's lock goes with it)


def build_runtime(settings: Settings) -> Runtime:
    """Identities and provider names are checked before anything loads (a typo fails in
    milliseconds); then the index opens and the models load, once."""
    identities = Identities.from_settings(settings.service)
    check_provider_names(settings.answers.llm_providers)
    store = open_store(settings.storage)
    try:
        dense, sparse = build_encoders(settings.models)
        check_dense_size(store, settings.collection, dense.model_name, dense.dimension)
        reranker = build_reranker(settings.rerank)
    except BaseException:
        store.close()  # the lock on an embedded index goes with it
        raise
    search = SearchService(settings, store, dense, sparse, reranker)
    answers = AnswerService(search, settings.answers)
    return Runtime(settings, identities, store, dense, sparse, reranker, search, answers)

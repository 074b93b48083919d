"""Selective context assembly: from ranked hits to the numbered blocks an LLM will read.

Steps, in order: drop hits under the relevance threshold, drop near-duplicates, place each
remaining hit (joining it to a block of the same document when adjacent) under the per-document,
block-count and token limits, then spend what is left of the budget on neighbouring chunks.
Blocks are grouped by document (documents in order of their best hit, chunks in document
order) and numbered for citation. Every hit left out is reported with its reason.

The threshold (``context_min_score``) applies to rerank scores only: fused RRF scores are
rank-based and BM25/cosine scales differ, so without a reranker no absolute cut is meaningful.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from retrieval.index_schema import Filter, MatchAny, Range
from retrieval.search_schemas import ContextBlock, DroppedHit, Hit
from retrieval.store.base import IndexStore
from retrieval.words import words

_MIN_OVERLAP_CHARS = 12  # shorter "overlaps" between chunks are coincidences


class TokenCounter(Protocol):
    def count(self, text: str) -> int: ...


class TokenizerCounter:
    """Counts with a Hugging Face tokenizer (default: the dense model's, until the answer model's is known)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False, verbose=False))


class FunctionCounter:
    """Wraps any ``text -> token count`` function, e.g. llama.cpp's ``len(llm.tokenize(...))``."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count

    def count(self, text: str) -> int:
        return int(self._count(text))


def word_set(text: str) -> frozenset[str]:
    return frozenset(words(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def join_chunks(texts: Sequence[str]) -> str:
    """Consecutive chunks joined, with the overlap the chunker repeated kept once."""
    joined = texts[0] if texts else ""
    for text in texts[1:]:
        joined = _join_two(joined, text)
    return joined


def _join_two(a: str, b: str) -> str:
    probe = b[:_MIN_OVERLAP_CHARS]
    if len(probe) == _MIN_OVERLAP_CHARS:
        pos = a.find(probe, max(0, len(a) - len(b)))
        while pos != -1:  # the first match that runs to the end of `a` is the longest overlap
            if b.startswith(a[pos:]):
                return a + b[len(a) - pos :]
            pos = a.find(probe, pos + 1)
    return a + "\n" + b


@dataclass
class _Chunk:
    id: str
    index: int
    text: str
    section: str
    hit: Hit | None  # None for a neighbour
    rank: int | None  # the hit's 1-based rank in the input


@dataclass
class _Document:
    """The chunks chosen from one document; its blocks are the runs of consecutive indices."""

    doc_id: str
    path: str
    title: str
    best_rank: int
    chunks: dict[int, _Chunk] = field(default_factory=dict)

    def runs(self, chunks: dict[int, _Chunk] | None = None) -> list[list[_Chunk]]:
        chunks = self.chunks if chunks is None else chunks
        runs: list[list[_Chunk]] = []
        for index in sorted(chunks):
            if runs and runs[-1][-1].index == index - 1:
                runs[-1].append(chunks[index])
            else:
                runs.append([chunks[index]])
        return runs


@dataclass
class ContextAssembly:
    blocks: list[ContextBlock]
    dropped: list[DroppedHit]
    tokens_used: int


@dataclass(frozen=True)
class ContextLimits:
    token_budget: int = 1500
    max_blocks: int = 8
    max_blocks_per_doc: int = 3
    neighbours: int = 1
    duplicate_threshold: float = 0.9
    min_rerank_score: float | None = None

    @classmethod
    def from_settings(cls, settings, token_budget: int | None = None) -> "ContextLimits":
        return cls(
            token_budget=token_budget or settings.context_token_budget,
            max_blocks=settings.context_max_blocks,
            max_blocks_per_doc=settings.context_max_blocks_per_doc,
            neighbours=settings.context_neighbours,
            duplicate_threshold=settings.context_duplicate_threshold,
            min_rerank_score=settings.context_min_score,
        )


class ContextAssembler:
    def __init__(self, store: IndexStore, collection: str, counter: TokenCounter) -> None:
        self.store = store
        self.collection = collection
        self.counter = counter

    def assemble(self, hits: Sequence[Hit], access: Filter, limits: ContextLimits) -> ContextAssembly:
        """``access`` is the caller's access filter: neighbour chunks are fetched through it too."""
        dropped: list[DroppedHit] = []
        candidates = self._relevant_and_distinct(hits, limits, dropped)
        state = _Selection(self.counter, limits)
        for rank, hit in candidates:
            reason = state.add(
                hit.doc_id, hit.path, hit.title, _Chunk(hit.id, hit.chunk_index, hit.text, hit.section, hit, rank)
            )
            if reason:
                dropped.append(DroppedHit(id=hit.id, path=hit.path, reason=reason))
        if limits.neighbours > 0:
            self._add_neighbours(state, access, limits.neighbours)
        blocks = state.blocks()
        return ContextAssembly(blocks=blocks, dropped=dropped, tokens_used=sum(b.tokens for b in blocks))

    @staticmethod
    def _relevant_and_distinct(
        hits: Sequence[Hit], limits: ContextLimits, dropped: list[DroppedHit]
    ) -> list[tuple[int, Hit]]:
        kept: list[tuple[int, Hit]] = []
        kept_words: list[frozenset[str]] = []
        threshold = limits.min_rerank_score if any(h.scores.rerank is not None for h in hits) else None
        for rank, hit in enumerate(hits, 1):
            if threshold is not None:
                # A hit past the rerank depth has no rerank score: it ranks below every reranked one.
                if hit.scores.rerank is None or hit.scores.rerank.score < threshold:
                    dropped.append(DroppedHit(id=hit.id, path=hit.path, reason="threshold"))
                    continue
            words = word_set(hit.text)
            if any(jaccard(words, other) >= limits.duplicate_threshold for other in kept_words):
                dropped.append(DroppedHit(id=hit.id, path=hit.path, reason="duplicate"))
                continue
            kept.append((rank, hit))
            kept_words.append(words)
        return kept

    def _add_neighbours(self, state: "_Selection", access: Filter, distance: int) -> None:
        """Grow blocks outwards, one step at a time, best blocks first, while limits allow."""
        available: dict[str, dict[int, _Chunk]] = {}
        for doc in state.documents.values():
            indexes = list(doc.chunks)
            wanted = Filter(
                must=(
                    MatchAny("doc_id", (doc.doc_id,)),
                    Range("chunk_index", gte=min(indexes) - distance, lte=max(indexes) + distance),
                )
            ).and_(access)
            found: dict[int, _Chunk] = {}
            for point in self.store.scroll(self.collection, wanted, fields=("chunk_index", "text", "section")):
                index = int(point.payload["chunk_index"])
                found.setdefault(
                    index,
                    _Chunk(
                        point.id, index, point.payload.get("text", ""), point.payload.get("section", ""), None, None
                    ),
                )
            available[doc.doc_id] = found
        for _ in range(distance):
            for doc in sorted(state.documents.values(), key=lambda d: d.best_rank):
                for run in doc.runs():
                    hit_indexes = [c.index for c in run if c.hit is not None]
                    if not hit_indexes:
                        continue
                    for index, edge in ((run[0].index - 1, run[0]), (run[-1].index + 1, run[-1])):
                        near_a_hit = min(hit_indexes) - distance <= index <= max(hit_indexes) + distance
                        chunk = available[doc.doc_id].get(index)
                        # A neighbour helps when it continues the same passage, not the next topic.
                        if (
                            near_a_hit
                            and chunk is not None
                            and chunk.section == edge.section
                            and index not in doc.chunks
                        ):
                            state.add(doc.doc_id, doc.path, doc.title, chunk)


class _Selection:
    """The chosen chunks per document, kept within every limit after each addition."""

    def __init__(self, counter: TokenCounter, limits: ContextLimits) -> None:
        self.counter = counter
        self.limits = limits
        self.documents: dict[str, _Document] = {}
        self._doc_tokens: dict[str, int] = {}
        self._text_tokens: dict[str, int] = {}  # memo: rendered block text -> tokens

    def _count(self, text: str) -> int:
        if text not in self._text_tokens:
            self._text_tokens[text] = self.counter.count(text)
        return self._text_tokens[text]

    def _tokens(self, runs: list[list[_Chunk]]) -> int:
        return sum(self._count(join_chunks([c.text for c in run])) for run in runs)

    def add(self, doc_id: str, path: str, title: str, chunk: _Chunk) -> str | None:
        """Adds ``chunk``, or returns why it does not fit."""
        doc = self.documents.get(doc_id)
        if doc is not None and chunk.index in doc.chunks:
            return "duplicate"  # two versions of one chunk (a re-ingest in progress)
        trial = dict(doc.chunks) if doc else {}
        trial[chunk.index] = chunk
        probe = doc or _Document(doc_id, path, title, chunk.rank or 0)
        runs = probe.runs(trial)
        if len(runs) > self.limits.max_blocks_per_doc:
            return "per_document"
        other_blocks = sum(len(d.runs()) for d in self.documents.values() if d.doc_id != doc_id)
        if other_blocks + len(runs) > self.limits.max_blocks:
            return "max_blocks"
        tokens = self._tokens(runs)
        used = sum(self._doc_tokens.values()) - self._doc_tokens.get(doc_id, 0)
        if used + tokens > self.limits.token_budget:
            return "budget"
        if doc is None:
            doc = self.documents[doc_id] = probe
        doc.chunks = trial
        if chunk.rank is not None:
            doc.best_rank = min(doc.best_rank, chunk.rank)
        self._doc_tokens[doc_id] = tokens
        return None

    def blocks(self) -> list[ContextBlock]:
        blocks: list[ContextBlock] = []
        for doc in sorted(self.documents.values(), key=lambda d: d.best_rank):
            for run in doc.runs():
                hits = [c for c in run if c.hit is not None]
                lead = min(hits, key=lambda c: c.rank or 0) if hits else run[0]
                text = join_chunks([c.text for c in run])
                blocks.append(
                    ContextBlock(
                        n=len(blocks) + 1,
                        doc_id=doc.doc_id,
                        path=doc.path,
                        title=doc.title,
                        section=lead.hit.section if lead.hit else "",
                        page=lead.hit.page if lead.hit else None,
                        chunk_ids=[c.id for c in run],
                        text=text,
                        tokens=self._count(text),
                    )
                )
        return blocks

"""Sentence-level compression of context blocks: keep the sentences of each block that matter to
the question, in their order, within the token budget.

Blocks are assembled under a larger pool budget first (``context_compression_pool`` x the
budget); every sentence is then scored by the dense encoder already loaded for search (cosine of
the question and the sentence), each block keeps its best sentence, and the best of the rest are
added until the budget is spent. A block is dropped whole only when even its best sentence does
not fit. Where sentences were left out between two kept ones, an ellipsis marks the gap, so the
model does not read two distant sentences as one passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from retrieval.context import TokenCounter
from retrieval.search_schemas import ContextBlock
from retrieval.sentences import sentence_spans

GAP = " … "


class SentenceEncoder(Protocol):
    def encode_documents(self, texts: Sequence[str]) -> np.ndarray: ...
    def encode_query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class _Sentence:
    block: int  # position of its block
    position: int  # its place in the block
    start: int  # where it is in the block's text
    end: int
    text: str
    score: float
    tokens: int


class SentenceCompressor:
    def __init__(self, encoder: SentenceEncoder, counter: TokenCounter) -> None:
        self.encoder = encoder
        self.counter = counter

    def compress(self, question: str, blocks: Sequence[ContextBlock], budget: int) -> list[ContextBlock]:
        """``blocks`` with only their best sentences, within ``budget`` tokens; renumbered from 1."""
        spans = [sentence_spans(block.text) for block in blocks]
        texts = [block.text[a:b] for block, found in zip(blocks, spans) for a, b in found]
        if not texts:
            return list(blocks)
        vectors = np.asarray(self.encoder.encode_documents(texts))
        query = np.asarray(self.encoder.encode_query(question))
        scores = iter((vectors @ query).tolist())
        sentences = [
            [
                _Sentence(
                    b, p, start, end, block.text[start:end], next(scores), self.counter.count(block.text[start:end])
                )
                for p, (start, end) in enumerate(found)
            ]
            for b, (block, found) in enumerate(zip(blocks, spans))
        ]
        kept: set[tuple[int, int]] = set()
        used = 0
        best = [max(block, key=lambda s: s.score) for block in sentences if block]
        rest = sorted((s for block in sentences for s in block), key=lambda s: -s.score)
        for sentence in [*best, *rest]:
            key = (sentence.block, sentence.position)
            if key in kept:
                continue
            cost = sentence.tokens + 1  # the space or ellipsis joining it
            if used + cost <= budget:
                kept.add(key)
                used += cost
        return self._blocks(blocks, sentences, kept)

    def _blocks(
        self, blocks: Sequence[ContextBlock], sentences: list[list[_Sentence]], kept: set[tuple[int, int]]
    ) -> list[ContextBlock]:
        compressed: list[ContextBlock] = []
        for b, block in enumerate(blocks):
            chosen = [s for s in sentences[b] if (b, s.position) in kept]
            if not chosen:
                continue
            parts = [chosen[0].text]
            for before, sentence in zip(chosen, chosen[1:]):
                # Neighbours keep what stood between them (a space, a line break); a gap is marked.
                joint = block.text[before.end : sentence.start] if sentence.position == before.position + 1 else GAP
                parts.append(joint + sentence.text)
            if chosen[0].position > 0:
                parts.insert(0, "… ")
            if chosen[-1].position < len(sentences[b]) - 1:
                parts.append(" …")
            text = "".join(parts)
            compressed.append(
                block.model_copy(update={"n": len(compressed) + 1, "text": text, "tokens": self.counter.count(text)})
            )
        return compressed

"""Chunk a parsed document by its structure: sections (heading paths) and pages first, then
llama-index's SentenceSplitter inside a section, with overlap.

Sizes are counted in the embedding model's own tokens. Every chunk is encoded with its
document title and section path as a header, and header + body never exceed the model's
maximum sequence length, so the encoder truncates nothing. Tables are kept whole with their
heading when they fit, else split between rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from llama_index.core.node_parser import SentenceSplitter

from ingest.parsing import Block, ParsedDocument
from retrieval.index_schema import SECTION_SEPARATOR, chunk_header

_MAX_HEADER_TOKENS = 48  # a long heading path is shortened from the left


@dataclass(frozen=True)
class Chunk:
    index: int
    section: str
    page: int | None
    text: str  # the body a reader sees (stored in the payload)
    embed_text: str  # header + body: what the dense and sparse encoders see


@dataclass
class _Piece:
    section: str
    page: int | None
    kind: str  # "text" | "table"
    text: str


class Chunker:
    def __init__(
        self,
        tokenize: Callable[[str], list[int]],
        chunk_tokens: int,
        overlap: int,
        max_seq_length: int,
    ) -> None:
        self.tokenize = tokenize
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        # [CLS] and [SEP] take two positions; one more for the header/body newline
        self.max_body_and_header = max_seq_length - 3

    def count(self, text: str) -> int:
        return len(self.tokenize(text))

    def chunk(self, document: ParsedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for piece in _pieces(document.blocks):
            header = self._header(document.title, piece.section)
            budget = min(self.chunk_tokens, self.max_body_and_header - self.count(header))
            bodies = self._split_table(piece.text, budget) if piece.kind == "table" else self._split_text(piece.text, budget)
            for body in bodies:
                chunks.append(
                    Chunk(index=len(chunks), section=piece.section, page=piece.page, text=body, embed_text=f"{header}\n{body}")
                )
        return chunks

    def _header(self, title: str, section: str) -> str:
        header = chunk_header(title, section)
        while self.count(header) > _MAX_HEADER_TOKENS and SECTION_SEPARATOR in header:
            header = header.split(SECTION_SEPARATOR, 1)[1]
        if self.count(header) > _MAX_HEADER_TOKENS:
            header = header[: _MAX_HEADER_TOKENS * 3]
        return header

    def _split_text(self, text: str, budget: int) -> list[str]:
        if self.count(text) <= budget:
            return [text]
        overlap = min(self.overlap, budget // 4)
        bodies = _splitter(budget, overlap, self.tokenize).split_text(text)
        return [part for body in bodies for part in self._enforce(body, budget)]

    def _split_table(self, text: str, budget: int) -> list[str]:
        if self.count(text) <= budget:
            return [text]
        bodies, current = [], ""
        for row in text.split("\n"):
            candidate = f"{current}\n{row}" if current else row
            if current and self.count(candidate) > budget:
                bodies.append(current)
                candidate = row
            current = candidate
        if current:
            bodies.append(current)
        return [part for body in bodies for part in self._enforce(body, budget)]

    def _enforce(self, body: str, budget: int) -> list[str]:
        """The splitter works on words; a token-dense run (URLs, code) can still overflow."""
        if self.count(body) <= budget:
            return [body]
        words, parts, current = body.split(" "), [], []
        for word in words:
            if current and self.count(" ".join(current + [word])) > budget:
                parts.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            parts.append(" ".join(current))
        return [p for p in parts if p.strip()]


@lru_cache(maxsize=16)
def _splitter(budget: int, overlap: int, tokenize: Callable) -> SentenceSplitter:
    return SentenceSplitter(chunk_size=budget, chunk_overlap=overlap, tokenizer=tokenize, paragraph_separator="\n\n")


def _pieces(blocks: list[Block]) -> list[_Piece]:
    """Group consecutive text by (section path, page); each table is a piece of its own."""
    pieces: list[_Piece] = []
    stack: list[tuple[int, str]] = []
    for block in blocks:
        if block.kind == "heading":
            while stack and stack[-1][0] >= block.depth:
                stack.pop()
            stack.append((block.depth, block.text))
            continue
        section = SECTION_SEPARATOR.join(text for _, text in stack)
        last = pieces[-1] if pieces else None
        if block.kind == "text" and last and last.kind == "text" and (last.section, last.page) == (section, block.page):
            last.text += "\n\n" + block.text
        else:
            pieces.append(_Piece(section, block.page, block.kind, block.text))
    return pieces

"""The one definition of a sentence: text up to . ! ? followed by space, or up to a line break
(headings, list items, table rows). Citation support, the extractive answer and the context's
sentence compression all split text this way."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n+\s*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty sentence of ``text``, surrounding whitespace excluded."""
    spans, start = [], 0
    for match in [*_SENTENCE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        if piece.strip():
            left = start + len(piece) - len(piece.lstrip())
            spans.append((left, left + len(piece.strip())))
        if match:
            start = match.end()
    return spans

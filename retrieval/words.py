"""The one definition of a word: a run of letters and digits (underscores and punctuation split
words), lower-cased. Context de-duplication, citation support, the answer cache's question
match and the evals' text overlap all count words this way."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    return [match.group(0).lower() for match in _WORD.finditer(text)]

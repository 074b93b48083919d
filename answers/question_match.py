"""When two questions are the same question, for the semantic answer cache.

A bi-encoder hardly sees word order: all-MiniLM-L6-v2 puts "How do I convert a number to a
string?" and "How do I convert a string to a number?" at cosine 0.995. Order carries meaning
where a word says which side of a relation a term is on ("to", "from", "than"...): there, two
questions made of the same content words in another order are different questions (a miss costs
time; serving the other answer would be wrong). Elsewhere a new order is a paraphrase ("vacation
days" / "days of vacation").
"""

from __future__ import annotations

import re

from answers.sentences import key_terms, match_form


def _terms(question: str) -> list[str]:
    return [match_form(word) for word in key_terms(question)]


_DIRECTION = re.compile(r"\b(?:to|into|onto|from|than|versus|vs|before|after)\b", re.IGNORECASE)


def reordered(a: str, b: str) -> bool:
    """The same content words in a different order around a word of direction."""
    terms_a, terms_b = _terms(a), _terms(b)
    directional = bool(_DIRECTION.search(a) or _DIRECTION.search(b))
    return directional and set(terms_a) == set(terms_b) and terms_a != terms_b


def same_question(a: str, b: str, cosine: float, threshold: float) -> bool:
    return cosine >= threshold and not reordered(a, b)

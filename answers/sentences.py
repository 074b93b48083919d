"""Sentences and their content words: what citation snippets, the extractive answer and the
plain follow-up rewrite compare by overlap."""

from __future__ import annotations

import re

from retrieval.sentences import sentence_spans
from retrieval.words import words

# Short function words carry no topic; without them overlap measures shared content.
_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers him his how i if in into is it its itself just me more
    most my no nor not now of off on once only or other our ours out over own same she should so
    some such than that the their theirs them then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you
    your yours tell explain describe please give show find""".split()
)
_CITATION_MARK = re.compile(r"\[\s*\d[\d\s,;\-–]*\]")


def split_sentences(text: str) -> list[str]:
    """The non-empty sentences of ``text``, stripped, in order."""
    return [text[start:end] for start, end in sentence_spans(text)]


def key_terms(text: str) -> list[str]:
    """Lower-cased words of ``text`` that are not stopwords, once each, in order of appearance;
    citation marks excluded."""
    text = _CITATION_MARK.sub(" ", text)
    kept = (w for w in words(text) if w not in _STOPWORDS and (len(w) > 1 or w.isdigit()))
    return list(dict.fromkeys(kept))


def content_words(text: str) -> set[str]:
    return set(key_terms(text))


def match_form(word: str) -> str:
    """The form a word is compared in to tell a paraphrase from its source: the plural folded
    (Harman's S-stemmer: "policies" -> "policy", "status" stays), then -ied, -ing, -ed or -e
    when four letters remain ("carried" -> "carry"; "replaced" and "replace" -> "replac"). Both
    sides fold alike, so a clipped form still matches its relatives."""
    if len(word) > 3 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        word = word[:-1]
    elif len(word) > 2 and word.endswith("s") and not word.endswith(("us", "ss")):
        word = word[:-1]
    if word.endswith("ied") and len(word) > 4:
        return word[:-3] + "y"
    for ending in ("ing", "ed", "e"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def matching_words(text: str) -> set[str]:
    """Content words of ``text`` in their match form: what citation support compares."""
    return {match_form(word) for word in key_terms(text)}


def overlap(query_words: set[str], text: str) -> int:
    """How many of ``query_words`` occur in ``text``."""
    return len(query_words & content_words(text))

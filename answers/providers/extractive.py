"""The last resort, always available: no language model, only the sentences of the context
that share most words with the question, each cited, under a label that says so."""

from __future__ import annotations

from collections.abc import Iterator

from answers.providers.base import GenerationInput
from answers.sentences import content_words, overlap, split_sentences

LABEL = "Extractive answer (sentences quoted from the sources; no language model wrote this):"
NOTHING_FOUND = (
    "Extractive answer: no documents were found for this question, so there is nothing to "
    "quote. Try other words or fewer filters."
)
NOTHING_MATCHES = (
    "Extractive answer: no sentence of the documents found shares words with the question; "
    "the documents do not appear to contain the answer."
)
_MAX_SENTENCES = 3
_MIN_CHARS = 20  # shorter lines are headings or list stubs, not statements
_MAX_CHARS = 300


def _clean(sentence: str) -> str:
    sentence = sentence.lstrip("#>*-• \t").strip()
    if len(sentence) > _MAX_CHARS:
        sentence = sentence[:_MAX_CHARS].rsplit(" ", 1)[0] + " …"
    return sentence


def best_sentences(question: str, blocks, limit: int = _MAX_SENTENCES) -> list[tuple[str, int]]:
    """(sentence, block number) pairs, best first: most question words shared, then the
    higher-ranked block, then the earlier sentence."""
    query = content_words(question)
    scored = []
    for rank, block in enumerate(blocks):
        for position, sentence in enumerate(split_sentences(block.text)):
            sentence = _clean(sentence)
            shared = overlap(query, sentence)
            if shared and len(sentence) >= _MIN_CHARS:
                scored.append((-shared, rank, position, sentence, block.n))
    chosen: list[tuple[str, int]] = []
    seen: set[str] = set()
    for *_, sentence, n in sorted(scored):
        if sentence.lower() not in seen:
            seen.add(sentence.lower())
            chosen.append((sentence, n))
        if len(chosen) == limit:
            break
    return chosen


class ExtractiveProvider:
    name = "extractive"
    uses_llm = False

    def unavailable_reason(self) -> str | None:
        return None

    def prepare(self) -> None:
        pass

    def stream(self, request: GenerationInput) -> Iterator[str]:
        if not request.blocks:
            yield NOTHING_FOUND
            return
        sentences = best_sentences(request.question, request.blocks)
        if not sentences:
            yield NOTHING_MATCHES
            return
        yield LABEL
        for sentence, n in sentences:
            yield f"\n- {sentence} [{n}]"

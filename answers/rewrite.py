"""Follow-up questions: rewrite "and what about the second one?" into a standalone query before
retrieval, with the LLM when one is ready, else by prepending the previous question's key terms.
The original wording is kept for the answer itself."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from answers.chain import describe_error, stream_with_timeout
from answers.prompt import build_rewrite_messages
from answers.providers import LLMProvider
from answers.schemas import ChatTurn
from answers.sentences import content_words, key_terms

_MAX_QUERY_CHARS = 300
_PLAIN_TERMS = 8  # enough to carry the topic, few enough not to drown the follow-up
_LABEL = re.compile(
    r"^\s*(standalone (question|query)|rewritten (question|query)|query)\s*:\s*", re.I
)


@dataclass(frozen=True)
class RewrittenQuery:
    query: str
    by: str  # the provider that rewrote it, or "plain"
    llm_error: str | None = None  # why the LLM rewrite was not used, when it was tried


def plain_rewrite(question: str, history: Sequence[ChatTurn]) -> str:
    """The previous user question's key terms that the follow-up lacks, then the follow-up."""
    previous = next((t.content for t in reversed(history) if t.role == "user"), "")
    present = content_words(question)
    carried = [term for term in key_terms(previous) if term not in present][:_PLAIN_TERMS]
    return " ".join([*carried, question.strip()])


def _clean_llm_query(raw: str, question: str, history: Sequence[ChatTurn]) -> str | None:
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    if not lines:
        return None
    query = _LABEL.sub("", lines[0]).strip().strip("\"'`“”").strip()
    if not query or len(query) > _MAX_QUERY_CHARS:
        return None
    # A rewrite sharing no word with the conversation is the model wandering off.
    known = content_words(question) | content_words(" ".join(t.content for t in history))
    if not content_words(query) & known:
        return None
    return query


class FollowUpRewriter:
    def __init__(self, provider: LLMProvider | None, timeout_s: float, use_llm: bool = True):
        self.provider = provider
        self.timeout_s = timeout_s
        self.use_llm = use_llm

    def rewrite(self, question: str, history: Sequence[ChatTurn]) -> RewrittenQuery | None:
        """None without history: the question is already standalone."""
        if not any(turn.role == "user" for turn in history):
            return None
        error = None
        if self.use_llm and self.provider is not None:
            error = self.provider.unavailable_reason()
            if error is None:
                try:
                    query = self._llm_rewrite(self.provider, question, history)
                    if query is not None:
                        return RewrittenQuery(query=query, by=self.provider.name)
                    error = "the rewrite was empty or off-topic"
                except Exception as exc:
                    error = describe_error(exc)
        return RewrittenQuery(query=plain_rewrite(question, history), by="plain", llm_error=error)

    def _llm_rewrite(
        self, provider: LLMProvider, question: str, history: Sequence[ChatTurn]
    ) -> str | None:
        messages = build_rewrite_messages(question, history)
        text = ""
        for piece in stream_with_timeout(
            lambda: provider.stream_chat(messages), self.timeout_s, f"rewrite-{provider.name}"
        ):
            text += piece
            # One line is the whole answer: stop generating once it is complete.
            if ("\n" in text.strip()) or len(text) > _MAX_QUERY_CHARS:
                break
        return _clean_llm_query(text, question, history)

"""Follow-up questions: rewrite "and what about the second one?" into a standalone query before
retrieval, with the LLM when one is ready, else by prepending the previous question's key terms.

A question that stands on its own is not rewritten, even mid-conversation: on a CPU the rewrite
costs the model seconds of reading before retrieval can start. ``stands_alone`` tells them apart
by the words a follow-up leans on the conversation with (pronouns that point back, an opening
"and"/"what about", a fragment of one content word or none)."""

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
# Words that point back into a conversation. "there" only outside "is there"/"are there".
_POINTING_BACK = re.compile(
    r"\b(it|its|itself|they|them|their|theirs|themselves|this|that|these|those|he|him|his|she|her|"
    r"hers|former|latter|same|else|above|previous|ones|(which|the \w+) one)\b"
    r"|(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )\bthere\b",
    re.I,
)
_OPENS_AS_FOLLOW_UP = re.compile(r"^\W*(and|but|or|so|also|then|what about|how about|what if|why not)\b", re.I)
_FRAGMENT_WORDS = 1  # "In France?", "Why?", "For contractors?" lean on what came before
_LABEL = re.compile(
    r"^\s*(standalone (question|query)|rewritten (question|query)|query)\s*:\s*", re.I
)


@dataclass(frozen=True)
class RewrittenQuery:
    query: str
    by: str  # the provider that rewrote it, or "plain"
    llm_error: str | None = None  # why the LLM rewrite was not used, when it was tried


def stands_alone(question: str) -> bool:
    """Whether ``question`` can be searched and answered without the conversation before it:
    no word pointing back, no follow-up opening, more than a fragment. Wrong either way costs
    little: a standalone question read as a follow-up is rewritten (seconds, as before), and a
    follow-up read as standalone is searched as asked, its wording shown with the answer."""
    if _POINTING_BACK.search(question) or _OPENS_AS_FOLLOW_UP.search(question):
        return False
    return len(content_words(question)) > _FRAGMENT_WORDS


def is_follow_up(question: str, history: Sequence[ChatTurn]) -> bool:
    """Whether ``question`` is read against the conversation in ``history``."""
    return any(turn.role == "user" for turn in history) and not stands_alone(question)


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
        """None without history, or for a question that stands alone."""
        if not is_follow_up(question, history):
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

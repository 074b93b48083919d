"""What every answer provider offers: a name, a readiness check, and a token stream."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llama_index.core.llms import LLM, ChatMessage

from retrieval.context import TokenCounter
from retrieval.search_schemas import ContextBlock


@dataclass(frozen=True)
class GenerationInput:
    """What a provider answers from: chat messages for an LLM, question and blocks for the
    extractive fallback (which reads no prompt)."""

    question: str
    blocks: Sequence[ContextBlock]
    messages: list[ChatMessage] = field(default_factory=list)
    # Provider name -> what its generation cost (prompt tokens, ...), for the answer's timings.
    stats: dict[str, dict[str, float]] = field(default_factory=dict, compare=False)


class AnswerProvider(Protocol):
    name: str
    uses_llm: bool  # False only for the extractive fallback

    def unavailable_reason(self) -> str | None:
        """None when the provider can answer; else what is missing and how to fix it."""

    def prepare(self) -> None:
        """Load what the provider needs (a model, a client) before the first request."""

    def stream(self, request: GenerationInput) -> Iterator[str]:
        """The answer's text, piece by piece as it is generated."""


class LLMProvider(ABC):
    """A provider backed by a llama-index LLM, built on first use (model loads, clients)."""

    name: str
    uses_llm = True

    def __init__(self) -> None:
        self._llm: LLM | None = None
        self._build_lock = threading.Lock()

    @abstractmethod
    def unavailable_reason(self) -> str | None: ...

    @abstractmethod
    def build_llm(self) -> LLM: ...

    def token_counter(self) -> TokenCounter | None:
        """Counts tokens as this model does, for the context budget; None when only a remote
        service knows (the budget is then counted with the dense model's tokenizer)."""
        return None

    def stream_kwargs(self) -> dict[str, Any]:
        """Per-call options passed to ``stream_chat``."""
        return {}

    def prepare(self) -> None:
        self.llm  # noqa: B018 - builds it

    @property
    def llm(self) -> LLM:
        with self._build_lock:
            if self._llm is None:
                self._llm = self.build_llm()
            return self._llm

    def stream_chat(self, messages: list[ChatMessage]) -> Iterator[str]:
        for chunk in self.llm.stream_chat(messages, **self.stream_kwargs()):
            if chunk.delta:
                yield chunk.delta

    def stream(self, request: GenerationInput) -> Iterator[str]:
        return self.stream_chat(request.messages)

"""Typed requests, responses and stream events of cited answers: the boundary shared by the
Python API, `cairn ask --json`, `POST /answer` (JSON and SSE) and the UI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from retrieval.search_schemas import ContextBlock, ContextResponse, RetrievalOptions


class ChatTurn(BaseModel):
    """One earlier turn of the conversation, sent back by the client with a follow-up."""

    model_config = {"extra": "forbid"}

    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class AnswerRequest(RetrievalOptions):
    """A question and how to retrieve for it (the retrieval options are those of /search)."""

    question: str = Field(min_length=1, max_length=2000)
    history: list[ChatTurn] = Field(default_factory=list, max_length=50)
    provider: str | None = Field(
        default=None,
        description="answer with this provider (extractive still backs it up); None = the chain",
    )
    stream: bool = False  # SSE instead of one JSON response
    cache: Literal["use", "bypass", "refresh"] = Field(
        default="use",
        description="use: a cached answer to the same question when still valid; bypass: neither read nor "
        "write the cache; refresh: answer anew and replace the cached answer",
    )
    route: bool = Field(
        default=True,
        description="true: when retrieval finds nothing close enough to answer from, say so at once (with "
        "the nearest sources) without asking the model; false: always ask the model",
    )


class Citation(BaseModel):
    """A [n] of the answer resolved to the context block it points at."""

    n: int
    path: str
    title: str
    page: int | None
    snippet: str  # the block's text trimmed around the sentence that best supports the claim
    chunk_ids: list[str]
    # True: the model wrote no mark for this block; Cairn matched an uncited sentence of the
    # answer to it after generation (most of the sentence's content words are in the block).
    attributed: bool = False
    # False: the block does not support a sentence citing it (it holds under 60% of the
    # sentence's content words, or under 3 of them); the mark is kept and shown as unsupported.
    supported: bool = True


class RouteInfo(BaseModel):
    """What the answer router (answers/router.py) read from the retrieval and decided."""

    routed: bool  # True: the router answered that the documents do not cover this; no model was asked
    signal: Literal["rerank", "dense", "none"]  # the stage whose best score was read ("none": no score)
    score: float | None  # that best score
    threshold: float | None  # routed when the score is below it


class CacheInfo(BaseModel):
    """What the semantic answer cache did for this answer."""

    outcome: Literal["hit", "miss", "bypass", "refresh"]  # miss and refresh: answered anew (then kept)
    similarity: float | None = None  # of the cached question to this one, on a hit
    cached_at: str | None = None  # when the served answer was written (ISO 8601, UTC), on a hit
    age_s: float | None = None


class ProviderFailure(BaseModel):
    """Why a provider earlier in the chain did not answer."""

    provider: str
    error: str


class AnswerResponse(BaseModel):
    question: str
    answer: str
    provider: str  # the provider that wrote `answer`
    extractive: bool  # True: quoted sentences, no language model wrote this answer
    fallbacks: list[ProviderFailure]  # providers tried before `provider`, in order
    rewritten_query: str | None  # the standalone query retrieval used; None: the question as is
    rewritten_by: str | None  # the provider that rewrote it, or "plain" (key-term fallback)
    citations: list[Citation]  # each cited block once, in order of first citation
    invalid_citations: int  # [n] pointing outside the blocks sent, removed from `answer`
    context: list[ContextBlock]  # the numbered blocks the answer was written from
    timings_ms: dict[str, float]
    cache: CacheInfo | None = None  # None: no cache configured
    route: RouteInfo | None = None  # None: the router did not run (turned off, or blocks given)


# --- stream events (Python generator and SSE) ------------------------------------------------


class ContextEvent(BaseModel):
    """Retrieval is done: the blocks the answer will be written from (sources can show early)."""

    type: Literal["context"] = "context"
    rewritten_query: str | None
    context: list[ContextBlock]
    # The whole retrieval behind the blocks: every candidate with its stage scores, the hits
    # left out and why, the time per stage (None when the blocks were given, not retrieved).
    retrieval: ContextResponse | None = None


class TokenEvent(BaseModel):
    type: Literal["token"] = "token"
    provider: str
    text: str


class ResetEvent(BaseModel):
    """The provider failed after some of its tokens were sent: discard them; the next provider's
    tokens follow."""

    type: Literal["reset"] = "reset"
    provider: str
    error: str


class FinalEvent(BaseModel):
    """Always the last event: the complete answer with its citations resolved."""

    type: Literal["final"] = "final"
    response: AnswerResponse


AnswerEvent = Annotated[
    ContextEvent | TokenEvent | ResetEvent | FinalEvent, Field(discriminator="type")
]

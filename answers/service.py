"""Cited answers: rewrite a follow-up, retrieve the caller's context, stream an answer through
the fallback chain, then check its citations against the blocks that were sent."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from answers.answer_cache import AnswerCache, request_key
from answers.chain import ChainAnswer, FallbackChain
from answers.citations import resolve_citations
from answers.prompt import build_answer_messages
from answers.providers import (
    PROVIDER_NAMES,
    AnswerProvider,
    GenerationInput,
    LLMProvider,
    build_provider,
)
from answers.rewrite import FollowUpRewriter, RewrittenQuery, is_follow_up
from answers.router import NOTHING_FOUND, ROUTED_ANSWER, AnswerRouter
from answers.schemas import (
    AnswerEvent,
    AnswerRequest,
    AnswerResponse,
    CacheInfo,
    ChatTurn,
    ContextEvent,
    FinalEvent,
    ResetEvent,
    RouteInfo,
    TokenEvent,
)
from retrieval.context import TokenCounter
from retrieval.search_schemas import ContextBlock, ContextResponse, SearchRequest
from retrieval.settings import AnswerSettings
from retrieval.timing import elapsed_ms

if TYPE_CHECKING:
    from retrieval.access import Identity


class ContextSource(Protocol):
    """What answers need from search: the numbered context blocks the caller may read."""

    def context(
        self, request: SearchRequest, identity: Identity, token_counter: TokenCounter | None = None
    ) -> ContextResponse: ...



def check_provider_names(names: Sequence[str]) -> None:
    """ValueError naming the choices for a provider name Cairn does not have."""
    for name in names:
        if name not in PROVIDER_NAMES:
            raise ValueError(
                f"unknown answer provider {name!r}; choose from {', '.join(PROVIDER_NAMES)} "
                "(CAIRN_LLM_PROVIDERS or --provider)"
            )


class AnswerService:
    def __init__(
        self, search: ContextSource | None, settings: AnswerSettings, cache: AnswerCache | None = None
    ) -> None:
        """``search`` None: answers only from blocks already retrieved (`stream_from_context`);
        ``cache`` None: every question is answered anew."""
        self.search = search
        self.settings = settings
        self.cache = cache
        check_provider_names(settings.llm_providers)
        self._providers: dict[str, AnswerProvider] = {}  # built once: models load once
        self.router = (
            AnswerRouter(settings.answer_route_min_rerank, settings.answer_route_min_dense)
            if settings.answer_router_enabled
            else None
        )

    # --- providers -----------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> None:
        check_provider_names([name])

    def provider(self, name: str) -> AnswerProvider:
        self._check_name(name)
        if name not in self._providers:
            self._providers[name] = build_provider(name, self.settings)
        return self._providers[name]

    def _check_allowed(self, name: str) -> None:
        """A caller may name only a provider of the configured chain: a key set for another
        use (COHERE_API_KEY for reranking) must not open that model to every caller."""
        allowed = list(dict.fromkeys([*self.settings.llm_providers, "extractive"]))  # extractive ends every chain
        if name in allowed:
            return
        if name not in PROVIDER_NAMES:
            raise ValueError(
                f"unknown answer provider {name!r}; choose from {', '.join(PROVIDER_NAMES)}, of which the "
                f"configured chain allows {', '.join(allowed)} (CAIRN_LLM_PROVIDERS sets the chain)"
            )
        raise ValueError(
            f"answer provider {name!r} is not in the configured chain; choose from {', '.join(allowed)} "
            "(CAIRN_LLM_PROVIDERS sets the chain)"
        )

    def chain(self, provider: str | None = None) -> FallbackChain:
        """The configured chain; a named provider (one of that chain) answers first, backed by
        extractive only (a caller who picks a model should not silently get another one)."""
        if provider:
            self._check_allowed(provider)
        names = [provider] if provider else list(self.settings.llm_providers)
        return FallbackChain([self.provider(n) for n in names], self.settings.llm_timeout_s)

    def readiness(self) -> dict[str, str | None]:
        """Each configured provider's unavailability reason (None: ready)."""
        return {n: self.provider(n).unavailable_reason() for n in self.chain().names}

    def _first_ready_llm(self, provider: str | None) -> LLMProvider | None:
        return next(
            (
                p
                for p in self.chain(provider).providers
                if isinstance(p, LLMProvider) and p.unavailable_reason() is None
            ),
            None,
        )

    def rewrite(
        self, question: str, history: Sequence[ChatTurn], provider: str | None = None
    ) -> RewrittenQuery | None:
        """The standalone query for a follow-up (None without history), written by the first
        ready LLM of the chain, else by the plain key-term fallback."""
        return self._rewrite(self._first_ready_llm(provider), question, history)

    def _rewrite(self, llm: LLMProvider | None, question: str, history: Sequence[ChatTurn]) -> RewrittenQuery | None:
        rewriter = FollowUpRewriter(
            llm, self.settings.llm_timeout_s, use_llm=self.settings.llm_rewrite_followups
        )
        return rewriter.rewrite(question, history)

    # --- answering -----------------------------------------------------------------------

    def stream(self, request: AnswerRequest, identity: Identity) -> Iterator[AnswerEvent]:
        """Context event, token events as generated (reset events when a provider fails
        mid-answer), then one final event with the resolved citations. A question answered
        before (the semantic cache: same groups, options and providers, documents unchanged) is
        a context event and the final event at once."""
        started = time.perf_counter()
        if self.search is None:
            raise RuntimeError("AnswerService was built without a search service to retrieve from")
        # A follow-up is read against its conversation: its answer is not the question's alone.
        follow_up = is_follow_up(request.question, request.history)
        cache = self.cache if self.cache is not None and not follow_up else None
        outcome = request.cache if cache is not None else None
        key = self._cache_key(request) if cache is not None else ""
        if cache is not None and request.cache == "use":
            hit = cache.lookup(request.question, identity.groups, key)
            if hit is not None:
                cached, info = hit
                yield ContextEvent(rewritten_query=cached.rewritten_query, context=cached.context, retrieval=None)
                timings = {"cache_ms": elapsed_ms(started), "total_ms": elapsed_ms(started)}
                yield FinalEvent(
                    response=cached.model_copy(update={"question": request.question, "cache": info, "timings_ms": timings})
                )
                return
            outcome = "miss"
        for event in self._answer_anew(request, identity, started):
            if isinstance(event, FinalEvent) and outcome is not None:
                response = event.response.model_copy(update={"cache": CacheInfo(outcome=outcome)})
                # Kept only when the chain's own answer came through: a fallback is not worth serving for a
                # week, and "not covered" is cheap to say again and must not outlive a new document.
                routed = response.route is not None and response.route.routed
                if cache is not None and outcome in ("miss", "refresh") and not response.fallbacks and not routed:
                    cache.put(request.question, identity.groups, key, response)
                event = FinalEvent(response=response)
            yield event

    def _cache_key(self, request: AnswerRequest) -> str:
        """What, besides the question and the documents, shapes an answer."""
        s = self.settings
        reranker = getattr(getattr(self.search, "reranker", None), "name", None)
        models = {"local": s.llm_local_model, "openai": s.openai_model, "cohere": s.cohere_chat_model, "rerank": reranker}
        models["prompt"] = s.llm_prompt_wording  # another wording writes another answer
        return request_key(
            request.retrieval_options().model_dump(mode="json"), self.chain(request.provider).names, models
        )

    def _answer_anew(self, request: AnswerRequest, identity: Identity, started: float) -> Iterator[AnswerEvent]:
        question, history, provider = request.question, request.history, request.provider
        # Found once per question (an unknown provider fails here, before any work): it rewrites a
        # follow-up, and the context budget is counted in its tokens, as it will most likely answer.
        llm = self._first_ready_llm(provider)
        timings: dict[str, float] = {}

        step = time.perf_counter()
        rewritten = self._rewrite(llm, question, history)
        if rewritten is not None:
            timings["rewrite_ms"] = elapsed_ms(step)

        step = time.perf_counter()
        search = SearchRequest(
            query=(rewritten.query if rewritten else question)[:2000],  # the request's limit
            **request.retrieval_options().model_dump(),
        )
        context = self.search.context(search, identity, token_counter=llm.token_counter() if llm else None)
        timings["retrieval_ms"] = elapsed_ms(step)
        for name, value in context.timings_ms.items():
            timings[f"search_{name}"] = value

        route = self.router.decide(context) if self.router is not None and request.route else None
        if route is not None and route.routed:
            yield from self._routed(question, context, rewritten, route, timings, started)
            return
        yield from self.stream_from_context(
            question,
            context.blocks,
            history=history if rewritten is not None else (),  # a question that stands alone needs none
            provider=provider,
            rewritten=rewritten,
            timings=timings,
            started=started,
            retrieval=context,
            route=route,
        )

    def _routed(
        self,
        question: str,
        context: ContextResponse,
        rewritten: RewrittenQuery | None,
        route: RouteInfo,
        timings: dict[str, float],
        started: float,
    ) -> Iterator[AnswerEvent]:
        """The router's answer: the documents do not cover this, with the nearest sources (the
        blocks, cited by none of its sentences); no model is asked."""
        blocks = list(context.blocks)
        rewritten_query = rewritten.query if rewritten else None
        yield ContextEvent(rewritten_query=rewritten_query, context=blocks, retrieval=context)
        text = ROUTED_ANSWER if blocks else NOTHING_FOUND
        timings["first_token_ms"] = elapsed_ms(started)
        yield TokenEvent(provider="router", text=text)
        timings["total_ms"] = elapsed_ms(started)
        yield FinalEvent(
            response=AnswerResponse(
                question=question,
                answer=text,
                provider="router",
                extractive=True,
                fallbacks=[],
                rewritten_query=rewritten_query,
                rewritten_by=rewritten.by if rewritten else None,
                citations=[],
                invalid_citations=0,
                context=blocks,
                timings_ms=timings,
                route=route,
            )
        )

    def stream_from_context(
        self,
        question: str,
        blocks: Sequence[ContextBlock],
        history: Sequence[ChatTurn] = (),
        provider: str | None = None,
        rewritten: RewrittenQuery | None = None,
        timings: dict[str, float] | None = None,
        started: float | None = None,
        retrieval: ContextResponse | None = None,
        route: RouteInfo | None = None,
    ) -> Iterator[AnswerEvent]:
        """Answer ``question`` from blocks already retrieved (the second half of ``stream``)."""
        started = started if started is not None else time.perf_counter()
        timings = dict(timings or {})
        chain = self.chain(provider)
        blocks = list(blocks)
        yield ContextEvent(rewritten_query=rewritten.query if rewritten else None, context=blocks, retrieval=retrieval)

        # A follow-up the model rewrote is answered as rewritten, without the earlier turns that
        # would otherwise lengthen the prompt it reads before its first token; a plain rewrite
        # (key terms put in front) reads worse than the conversation, which stays.
        asked, turns = (rewritten.query, ()) if rewritten and rewritten.by != "plain" else (question, history)
        request = GenerationInput(
            question=asked,
            blocks=blocks,
            messages=build_answer_messages(asked, blocks, turns, self.settings.llm_prompt_wording),
        )
        step = time.perf_counter()
        first_token: dict[str, float] = {}  # provider -> ms since the request started
        answer: ChainAnswer | None = None
        for event in chain.stream(request):
            if isinstance(event, TokenEvent):
                first_token.setdefault(event.provider, elapsed_ms(started))
                yield event
            elif isinstance(event, ResetEvent):
                yield event
            else:
                answer = event
        assert answer is not None  # the chain ends with the extractive provider
        timings["generation_ms"] = elapsed_ms(step)
        if answer.provider in first_token:
            timings["first_token_ms"] = first_token[answer.provider]
        # Where the provider can tell (the local model): prompt tokens read and reused from its
        # cache, prompt-eval time, its own time to a first token, tokens generated and per second.
        timings.update(request.stats.get(answer.provider, {}))

        extractive = not chain.providers[chain.names.index(answer.provider)].uses_llm
        attribute = self.settings.llm_attribute_uncited and not extractive
        text, citations, invalid = resolve_citations(answer.text, blocks, attribute=attribute)
        timings["total_ms"] = elapsed_ms(started)
        yield FinalEvent(
            response=AnswerResponse(
                question=question,
                answer=text,
                provider=answer.provider,
                extractive=extractive,
                fallbacks=answer.fallbacks,
                rewritten_query=rewritten.query if rewritten else None,
                rewritten_by=rewritten.by if rewritten else None,
                citations=citations,
                invalid_citations=invalid,
                context=blocks,
                timings_ms=timings,
                route=route,
            )
        )

    def answer(self, request: AnswerRequest, identity: Identity) -> AnswerResponse:
        """The whole answer at once (the stream, consumed)."""
        return final_response(self.stream(request, identity))


def final_response(events: Iterator[AnswerEvent]) -> AnswerResponse:
    for event in events:
        if isinstance(event, FinalEvent):
            return event.response
    raise RuntimeError("the answer stream ended without a final event")

"""How one answer looks: the text with its [n] marks, who wrote it, one card per cited source,
and the retrieval panel under it; while it is made, the passages found as soon as retrieval is
done, the text above them as it is written. What a document, a model or a person wrote goes
through `app.safe_markdown` first."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import streamlit as st

from answers.schemas import AnswerResponse, Citation, ContextEvent, FinalEvent, ResetEvent, TokenEvent
from app.chat import Turn
from app.client import ChatEvent
from app.panel import STAGES, retrieval_panel
from app.safe_markdown import as_code, as_markdown
from retrieval.search_schemas import ContextBlock, ContextResponse

_CARDS_PER_ROW = 3
_SNIPPET_CHARS = 280  # a found passage's opening on its card, before the answer cites anything


def stream_answer(turn: Turn, events: Iterable[ChatEvent], index: int) -> str:
    """Show an answer while it is made: a spinner until retrieval is done, then the passages
    found (cards with their scores), then the text above them as it is written. Each time the
    whole text so far goes through `as_markdown`, because an image split across tokens is only
    whole in the sum (and st.write_stream would complete unfinished Markdown on its own).
    ``events`` fill ``turn`` (see `app.chat.record`); returns the text shown."""
    text_slot, status, sources = st.empty(), st.empty(), st.empty()
    text = ""
    for event in _with_status(events, status):
        if isinstance(event, ContextEvent):
            with sources.container():
                found_sources(event, index)
        elif isinstance(event, TokenEvent):
            text += event.text
            text_slot.markdown(as_markdown(text) + " ▌")
        elif isinstance(event, ResetEvent):
            # Text cannot be taken back mid-stream; the final answer replaces it when done.
            text += f"\n\n*({event.provider} stopped mid-answer; the next provider answers.)*\n\n"
            text_slot.markdown(as_markdown(text) + " ▌")
    text_slot.markdown(as_markdown(text))
    return text


def _with_status(events: Iterable[ChatEvent], status) -> Iterator[ChatEvent]:
    """``events`` passed on; until the first token, a spinner in ``status`` says what is awaited
    (retrieval, then the model reading its prompt, which on a CPU is most of the wait)."""
    events = iter(events)
    label: str | None = "Searching the documents…"
    while label is not None:
        with status.container(), st.spinner(label):
            event = next(events, None)
        if event is None:
            return
        if isinstance(event, ContextEvent):
            passages = f" from {len(event.context)} passage(s)" if event.context else ""
            label = f"Writing the answer{passages}…"
        elif isinstance(event, (TokenEvent, ResetEvent, FinalEvent)):
            label = None
        yield event
    status.empty()
    yield from events


def render_turn(turn: Turn, index: int) -> None:
    """One assistant message; ``index`` keeps the element keys of each turn apart."""
    if turn.error:
        st.error(as_markdown(turn.error))  # an error may quote a provider's reply
        return
    response = turn.response
    if response is None:
        st.warning("The answer stopped before it was complete: ask again.")
        return
    if turn.rewritten_query:
        with st.expander("Follow-up searched as a standalone question", expanded=False):
            st.markdown(f"**{as_markdown(turn.rewritten_query, one_line=True)}**")
            rewriter = as_markdown(response.rewritten_by or "the service")
            st.caption(f"rewritten by {rewriter} from the conversation so far")
    st.markdown(as_markdown(response.answer))
    cache_notice(response, index)
    provider_notice(response, turn.resets)
    if response.invalid_citations:
        st.warning(
            f"{response.invalid_citations} citation(s) pointed to sources that were not given to the "
            "model; they were removed from the answer."
        )
    source_cards(response, index, turn.retrieval)
    if turn.retrieval is not None:
        retrieval_panel(turn.retrieval, response.timings_ms)


def cache_notice(response: AnswerResponse, index: int) -> None:
    """An answer served from the semantic cache says so and when it was written, with a button
    that asks the question again (the page answers anew and replaces the cached answer)."""
    cache = response.cache
    if cache is None or cache.outcome != "hit":
        return
    when = as_markdown((cache.cached_at or "").replace("T", " ").replace("+00:00", " UTC"))
    alike = f", to a question {cache.similarity:.0%} alike" if cache.similarity is not None else ""
    st.info(f"**From the answer cache**: written {when}{alike}; the documents it cites are unchanged since.", icon="🗂️")
    if st.button("Ask fresh", key=f"ask-fresh-{index}", help="Answer this question again from the documents"):
        st.session_state["ask_fresh"] = index
        st.rerun()


def provider_notice(response: AnswerResponse, resets: list[str]) -> None:
    """Who wrote the answer; a visible notice when it is a fallback or no model wrote it."""
    failed = "; ".join(f"**{as_markdown(f.provider)}**: {as_markdown(f.error)}" for f in response.fallbacks)
    provider = as_markdown(response.provider)
    route = response.route
    if route is not None and route.routed:
        if route.score is None:
            why = "nothing was found that this user may read"
        else:
            why = f"the best passage scored {route.score:.3f} ({route.signal}), below {route.threshold}"
        st.info(
            f"**Not covered by the documents**: no language model was asked, because {why}. The nearest "
            "sources are below; rephrasing the question may find more.",
            icon="🧭",
        )
        st.caption("Answered by the router (before generation)")
        return
    if response.extractive:
        notice = "**Extractive answer**: no language model wrote this; the sentences are quoted from the sources."
        if failed:
            notice += f"\n\nNo language model answered. {failed}"
        st.info(notice, icon="ℹ️")
    elif response.fallbacks:
        st.warning(f"**Fallback answer** from **{provider}**, because an earlier provider failed. {failed}")
    if resets and not response.fallbacks:
        st.warning("A provider stopped mid-answer: " + as_markdown("; ".join(resets)))
    st.caption(f"Answered by {provider}")


def block_scores(retrieval: ContextResponse | None) -> dict[int, str]:
    """Block number -> the score of its best-ranked chunk at the last stage it went through
    (rerank, else fused, else dense or BM25), with its rank among the candidates."""
    if retrieval is None:
        return {}
    ranked = {hit.id: (rank, hit) for rank, hit in enumerate(retrieval.hits, 1)}
    scores = {}
    for block in retrieval.blocks:
        found = [ranked[chunk_id] for chunk_id in block.chunk_ids if chunk_id in ranked]
        if not found:
            continue
        rank, hit = min(found, key=lambda pair: pair[0])
        for field in ("rerank", "fused", "dense", "sparse"):
            if (stage := getattr(hit.scores, field)) is not None:
                scores[block.n] = f"{STAGES[field]} {stage.score:.4f}, #{rank} of {len(retrieval.hits)}"
                break
    return scores


def _opening(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= _SNIPPET_CHARS:
        return text
    return text[:_SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


def _card(key: str, source: Citation | ContextBlock, section: str, notes: list[str], snippet: str) -> None:
    """One bordered card: number and title, where the passage is, ``notes``, then ``snippet``."""
    with st.container(border=True, key=key):
        st.markdown(f"**[{source.n}] {as_markdown(source.title, one_line=True)}**")
        where = [as_code(source.path)]  # a file name is the folder owner's to choose
        if source.page:
            where.append(f"page {source.page}")
        if section:
            where.append(as_markdown(section, one_line=True))
        st.caption(" · ".join(where + notes))
        st.markdown("> " + as_markdown(snippet, one_line=True))


def found_sources(event: ContextEvent, index: int) -> None:
    """The passages retrieval found, shown while the answer is written: one card each, with its
    score and opening; the final answer replaces them with the cards of what it cites."""
    if not event.context:
        st.caption("No passages were found for this question.")
        return
    scores = block_scores(event.retrieval)
    st.markdown(f"**Sources found** · {len(event.context)} passage(s), the answer is being written from them")
    columns = st.columns(min(_CARDS_PER_ROW, len(event.context)))
    for position, block in enumerate(event.context):
        notes = [f"score {scores[block.n]}"] if block.n in scores else []
        with columns[position % len(columns)]:
            _card(f"found-{index}-{block.n}", block, block.section, notes, _opening(block.text))


def source_cards(response: AnswerResponse, index: int, retrieval: ContextResponse | None = None) -> None:
    """One bordered card per cited block: title, path, page, section, score, and the cited passage;
    for an answer the router gave, the nearest passages (none of them cited)."""
    if response.route is not None and response.route.routed:
        nearest_sources(response, index, retrieval)
        return
    if not response.citations:
        if response.context:
            st.caption("The answer cites none of the passages it was given.")
        return
    sections = {block.n: block.section for block in response.context}
    scores = block_scores(retrieval)
    st.markdown("**Sources**")
    columns = st.columns(min(_CARDS_PER_ROW, len(response.citations)))
    for position, citation in enumerate(response.citations):
        notes = []
        if citation.attributed:
            notes.append("matched after the answer: the model wrote no mark for it")
        if citation.n in scores:
            notes.append(f"score {scores[citation.n]}")
        with columns[position % len(columns)]:
            _card(f"source-{index}-{citation.n}", citation, sections.get(citation.n, ""), notes, citation.snippet)


def nearest_sources(response: AnswerResponse, index: int, retrieval: ContextResponse | None = None) -> None:
    """The passages closest to a question the documents do not cover, with their scores."""
    if not response.context:
        return
    scores = block_scores(retrieval)
    st.markdown("**Nearest sources** · not close enough to answer from")
    columns = st.columns(min(_CARDS_PER_ROW, len(response.context)))
    for position, block in enumerate(response.context):
        notes = [f"score {scores[block.n]}"] if block.n in scores else []
        with columns[position % len(columns)]:
            _card(f"nearest-{index}-{block.n}", block, block.section, notes, _opening(block.text))

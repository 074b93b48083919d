"""How one answer looks: the text with its [n] marks, who wrote it, one card per cited source,
and the retrieval panel under it. What a document, a model or a person wrote goes through
`app.safe_markdown` first."""

from __future__ import annotations

from collections.abc import Iterator

import streamlit as st

from answers.schemas import AnswerResponse
from app.chat import Turn
from app.panel import retrieval_panel
from app.safe_markdown import as_code, as_markdown

_CARDS_PER_ROW = 3


def stream_markdown(pieces: Iterator[str]) -> str:
    """Show an answer's text while it is written; each time the whole text so far goes through
    `as_markdown`, because an image split across tokens is only whole in the sum (and
    st.write_stream would complete unfinished Markdown on its own). Returns the text."""
    shown = st.empty()
    text = ""
    for piece in pieces:
        text += piece
        shown.markdown(as_markdown(text) + " ▌")
    shown.markdown(as_markdown(text))
    return text


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
    provider_notice(response, turn.resets)
    if response.invalid_citations:
        st.warning(
            f"{response.invalid_citations} citation(s) pointed to sources that were not given to the "
            "model; they were removed from the answer."
        )
    source_cards(response, index)
    if turn.retrieval is not None:
        retrieval_panel(turn.retrieval, response.timings_ms)


def provider_notice(response: AnswerResponse, resets: list[str]) -> None:
    """Who wrote the answer; a visible notice when it is a fallback or no model wrote it."""
    failed = "; ".join(f"**{as_markdown(f.provider)}**: {as_markdown(f.error)}" for f in response.fallbacks)
    provider = as_markdown(response.provider)
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


def source_cards(response: AnswerResponse, index: int) -> None:
    """One bordered card per cited block: title, path, page, section, and the cited passage."""
    if not response.citations:
        if response.context:
            st.caption("The answer cites none of the passages it was given.")
        return
    sections = {block.n: block.section for block in response.context}
    st.markdown("**Sources**")
    columns = st.columns(min(_CARDS_PER_ROW, len(response.citations)))
    for position, citation in enumerate(response.citations):
        with columns[position % len(columns)], st.container(border=True, key=f"source-{index}-{citation.n}"):
            st.markdown(f"**[{citation.n}] {as_markdown(citation.title, one_line=True)}**")
            where = [as_code(citation.path)]  # a file name is the folder owner's to choose
            if citation.page:
                where.append(f"page {citation.page}")
            if sections.get(citation.n):
                where.append(as_markdown(sections[citation.n], one_line=True))
            if citation.attributed:
                where.append("matched after the answer: the model wrote no mark for it")
            st.caption(" · ".join(where))
            st.markdown("> " + as_markdown(citation.snippet, one_line=True))

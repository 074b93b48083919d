"""Cairn's chat page: ask in plain words, read a cited answer, see why each source was chosen.
Start it with `cairn ui`."""

from __future__ import annotations

from retrieval.process_env import configure_process_env

configure_process_env()  # before torch or transformers are imported

import logging  # noqa: E402

import streamlit as st  # noqa: E402

from answers.schemas import AnswerRequest  # noqa: E402
from app.chat import Turn, history_of, record  # noqa: E402
from app.client import CairnClient, ClientError, client_from_settings  # noqa: E402
from app.render import render_turn, stream_answer  # noqa: E402
from app.safe_markdown import as_markdown  # noqa: E402
from app.sidebar import AskSettings, render_sidebar  # noqa: E402
from retrieval.settings import Settings  # noqa: E402

log = logging.getLogger("cairn.ui")


@st.cache_resource(show_spinner="Loading the models and opening the index…")
def load_client(settings_key: str) -> CairnClient:
    """Once per process and configuration: the key is the settings, so a changed environment
    (another index, another provider) gets its own client."""
    return client_from_settings(Settings())


def answer(turn: Turn, client: CairnClient, ask: AskSettings, turns: list[Turn], cache: str = "use") -> None:
    """The passages found as soon as retrieval is done, the answer's tokens above them as they
    come, then the complete answer with its cited sources in their place."""
    placeholder = st.empty()
    try:
        with placeholder.container():
            request = AnswerRequest(
                question=turn.question, history=history_of(turns), cache=cache, **ask.options.model_dump()
            )
            stream_answer(turn, record(turn, client.ask_stream(request, ask.user)), len(turns))
    except ClientError as exc:
        turn.error = str(exc)
    except Exception as exc:  # shown in plain words; the traceback goes to the terminal
        log.exception("answering %r failed", turn.question)
        turn.error = f"Something went wrong while answering ({type(exc).__name__}: {exc}). Details are in the terminal running `cairn ui`."
    with placeholder.container():
        render_turn(turn, len(turns))


def main() -> None:
    st.set_page_config(page_title="Cairn", page_icon="🪨", layout="wide")
    settings = Settings()
    settings_key = settings.model_dump_json()
    try:
        client = load_client(settings_key)
    except ClientError as exc:
        st.error(as_markdown(str(exc)))
        st.stop()

    ask = render_sidebar(client, settings, settings_key)
    turns: list[Turn] = st.session_state.setdefault("turns", [])
    if ask is None:  # no key yet, or a refused one: nothing of anyone's is shown
        turns.clear()
        st.session_state["acting_user"] = None
        st.markdown("#### Enter your API key in the sidebar to ask questions")
        st.caption("Whoever runs Cairn gives each person a key; it decides which documents your answers may use.")
        st.stop()
    if st.session_state.get("acting_user", ask.user) != ask.user:
        turns.clear()  # one user's answers must not feed another user's follow-ups
    st.session_state["acting_user"] = ask.user

    intro = st.empty()
    if not turns:
        with intro.container():
            st.markdown("#### Ask a question about your documents")
            st.caption(
                "Answers cite their sources as [n]; open *Retrieval* under an answer to see why each source was chosen."
            )
    fresh = st.session_state.pop("ask_fresh", None)  # "Ask fresh" under a cached answer
    for index, turn in enumerate(turns):
        with st.chat_message("user"):
            st.markdown(as_markdown(turn.question))
        with st.chat_message("assistant"):
            if index == fresh:
                turns[index] = turn = Turn(question=turn.question)
                answer(turn, client, ask, turns[:index], cache="refresh")
            else:
                render_turn(turn, index)

    if question := st.chat_input("Ask a question about your documents"):
        intro.empty()
        with st.chat_message("user"):
            st.markdown(as_markdown(question))
        turn = Turn(question=question)
        with st.chat_message("assistant"):
            answer(turn, client, ask, turns)
        turns.append(turn)


# Only as the page: an ingest job's parser process (multiprocessing's spawn) imports the main
# module of the process that started it, which under `streamlit run` is this page, under the
# name "__mp_main__". Run there, the page would load the models, open the index a second time
# and announce that process as its holder in serving.json.
if __name__ == "__main__":
    main()

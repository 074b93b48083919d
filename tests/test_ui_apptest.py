"""The chat page, run headless by Streamlit's AppTest against small real indexes (real ingest,
real models, real Qdrant engine); only the external OpenAI-compatible API is a local fake."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import date
from pathlib import Path

import pytest
from fixtures_retrieval import RESTRICTED_PATH

VACATION_QUESTION = "How many vacation days can be carried over?"


def ask(at, question: str):
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception  # errors are shown in words, never raised
    return at


def answers(at) -> list:
    return [message for message in at.chat_message if message.name == "assistant"]


def markdown_of(element) -> list[str]:
    return [m.value for m in element.markdown]


def answer_text(message) -> str:
    """The answer itself: the message's first markdown outside its expanders."""
    inside = {m.value for expander in message.expander for m in expander.markdown}
    return next(value for value in markdown_of(message) if value not in inside)


def panel_table(at):
    """The candidates table of the latest answer's retrieval panel."""
    return answers(at)[-1].expander[-1].dataframe[0].value


def candidates(at) -> list[str]:
    return list(panel_table(at)["candidate"])


def test_ask_shows_cited_answer_sources_and_retrieval_panel(page, corpus_index):
    at = page(corpus_index).run()
    assert not at.exception
    assert at.sidebar.metric[0].value == "7"  # documents: 8 indexed, the hr-only one hidden

    ask(at, VACATION_QUESTION)
    (message,) = answers(at)
    text = markdown_of(message)
    assert "five unused vacation days can be carried over into the next calendar year. [1]" in answer_text(message)
    assert any("Extractive answer" in info.value for info in message.info)
    assert "**[1] Vacation policy**" in text
    assert any(c.value.startswith("`handbook/vacation-policy.md`") for c in message.caption)
    (citation,) = at.session_state["turns"][0].response.citations
    assert "> " + " ".join(citation.snippet.split()) in text  # the cited passage is on the card

    (panel,) = message.expander
    assert panel.label.startswith("Retrieval: 10 candidates")
    table = panel.dataframe[0].value
    for column in ("dense", "dense rank", "BM25", "BM25 rank", "fused", "fused rank", "rerank", "context"):
        assert column in table.columns
    assert table["candidate"][0].startswith("#1 handbook/vacation-policy.md")
    assert table["context"][0] == "in, as [1]"
    assert "out: near-duplicate of a kept passage" in set(table["context"])  # the 2023 copy
    assert table["dense"].notna().all() and table["fused rank"].tolist() == list(range(1, 11))
    (chart,) = [child for child in panel.children.values() if getattr(child, "type", "") == "vega_lite_chart"]
    encoding = json.loads(chart.proto.spec)["encoding"]
    assert encoding["x"]["field"] == "relative" and encoding["yOffset"]["field"] == "stage"
    assert any(c.value.startswith("Time per stage: encode query") for c in panel.caption)


def test_follow_up_is_searched_with_the_conversation(page, corpus_index):
    at = page(corpus_index).run()
    ask(at, VACATION_QUESTION)
    ask(at, "When do they expire?")

    first, second = answers(at)
    assert first.expander[0].label.startswith("Retrieval")  # a first question is not rewritten
    rewritten, panel = second.expander
    assert rewritten.label == "Follow-up searched as a standalone question"
    assert not rewritten.proto.expanded  # collapsed
    query = markdown_of(rewritten)[0]
    assert "vacation" in query and "When do they expire?" in query
    assert "March 31st" in answer_text(second)
    assert any("searched for: " in c.value and "vacation" in c.value for c in panel.caption)


def test_filters_narrow_every_candidate(page, corpus_index):
    at = page(corpus_index).run()
    assert at.multiselect(key="file_types").options == ["html", "md", "txt"]

    at.multiselect(key="file_types").set_value(["txt"]).run()
    ask(at, "How did revenue and costs develop?")
    assert candidates(at) and all(c.split(" ")[1].endswith(".txt") for c in candidates(at))

    at.multiselect(key="file_types").set_value([]).run()
    at.selectbox(key="folder").set_value("handbook").run()
    ask(at, VACATION_QUESTION)
    assert candidates(at) and all(c.split(" ")[1].startswith("handbook/") for c in candidates(at))

    at.selectbox(key="folder").set_value("(all folders)").run()
    at.date_input(key="before").set_value(date(2024, 1, 1)).run()
    ask(at, "How did revenue and costs develop?")
    assert [c.split(" ")[1] for c in candidates(at)] == ["reports/q3-summary.txt"]  # modified in 2023


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_an_empty_index_says_which_command_fills_it(page, tmp_path, state, encoders, parser_pool):
    from fixtures_ui import build_index

    data_dir = tmp_path / "index"
    if state == "empty":
        (tmp_path / "nothing").mkdir()
        build_index(data_dir, {"nothing": tmp_path / "nothing"}, encoders, parser_pool)
    at = page(data_dir).run()
    assert not at.exception
    sidebar_text = " ".join(e.value for e in [*at.sidebar.error, *at.sidebar.warning])
    assert "cairn ingest FOLDER" in sidebar_text

    ask(at, VACATION_QUESTION)
    (message,) = answers(at)
    if state == "missing":
        assert "cairn ingest FOLDER" in message.error[0].value
    else:
        assert "no documents were found" in answer_text(message)


def test_a_failing_provider_falls_back_with_a_visible_notice(page, corpus_index, fake_openai):
    fake_openai.mode = "500"
    env = {
        "CAIRN_LLM_PROVIDERS": '["openai", "extractive"]',
        "CAIRN_OPENAI_BASE_URL": fake_openai.url,
        "CAIRN_LLM_TIMEOUT_S": "30",
    }
    at = page(corpus_index, **env).run()
    ask(at, VACATION_QUESTION)

    assert fake_openai.requests, "the OpenAI-compatible provider was never called"
    (message,) = answers(at)
    notice = message.info[0].value
    assert "Extractive answer" in notice and "No language model answered" in notice
    assert "openai" in notice and "500" in notice
    assert "five unused vacation days" in answer_text(message)

    # The same page with the provider back: its answer, no fallback notice; a citation of a
    # passage it was never given is removed and flagged.
    fake_openai.mode = "ok"
    fake_openai.reply = ["Employees get 25 days ", "of annual leave [1][9]."]
    ask(at, "How many days of annual leave does an employee get?")
    second = answers(at)[-1]
    assert answer_text(second) == "Employees get 25 days of annual leave [1]."
    assert not second.info
    assert [w.value for w in second.warning] == [
        "1 citation(s) pointed to sources that were not given to the model; they were removed from the answer."
    ]
    assert any(c.value == "Answered by openai" for c in second.caption)


def test_acting_user_is_picked_among_configured_identities(page, corpus_index, tmp_path):
    identities = tmp_path / "identities.yaml"
    identities.write_text(
        "anonymous_groups: [public]\n"
        "users:\n"
        "  - {user: hana, api_key: hana-key-0123456789, groups: [public, hr]}\n",
        encoding="utf-8",
    )
    # The switch by name is a development setting (without it the page asks for a key).
    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(identities), CAIRN_UI_DEV_USER_SWITCH="true").run()
    picker = at.selectbox(key="user")
    assert picker.options == ["anonymous", "hana"] and picker.value == "anonymous"
    assert at.sidebar.metric[0].value == "7"
    question = "Who receives the Nightingale retention bonus?"
    ask(at, question)
    assert not any(RESTRICTED_PATH in c for c in candidates(at))

    at.selectbox(key="user").set_value("hana").run()
    assert at.sidebar.metric[0].value == "8"
    assert not answers(at)  # another user's conversation is not carried over
    ask(at, question)
    assert RESTRICTED_PATH in candidates(at)[0]
    assert "payments team" in answer_text(answers(at)[0])


# --- over HTTP: the same page against `cairn serve`'s app ------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def api_url(pristine_corpus_index, tmp_path, encoders):
    """The real HTTP API (search and answer routes) on its own copy of the index."""
    import shutil

    import uvicorn

    from cairn.api.app import create_app
    from retrieval.access import Identities
    from retrieval.rerank import NoReranker
    from retrieval.service import SearchService
    from retrieval.settings import Settings
    from retrieval.store.edge import EdgeStore

    data_dir = Path(shutil.copytree(pristine_corpus_index, tmp_path / "api-index"))
    settings = Settings(data_dir=data_dir, collection="cairn", llm_providers=["extractive"], reranker="none", _env_file=None)
    service = SearchService(settings, EdgeStore(data_dir), *encoders, NoReranker())
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(service, Identities.anonymous_only()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    service.close()


def test_over_http_the_page_streams_answers_from_the_service(page, api_url, tmp_path):
    at = page(tmp_path / "unused", CAIRN_API_URL=api_url).run()
    assert not at.exception
    assert any(api_url in c.value for c in at.sidebar.caption)
    assert at.sidebar.metric[0].value == "7"
    at.radio(key="fusion").set_value("dbsf").run()  # the choice travels with POST /answer

    ask(at, VACATION_QUESTION)
    (message,) = answers(at)
    assert "five unused vacation days" in answer_text(message)
    assert "**[1] Vacation policy**" in markdown_of(message)
    assert candidates(at)[0].startswith("#1 handbook/vacation-policy.md")
    # DBSF sums normalised scores (about 1 and above for the best hit); RRF's stay below 0.1
    assert panel_table(at)["fused"].iloc[0] > 0.5


def test_an_unreachable_service_is_reported_in_plain_words(page, tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    at = page(tmp_path / "unused", CAIRN_API_URL=url).run()
    assert not at.exception
    assert f"Cannot reach the Cairn service at {url}" in at.sidebar.error[0].value

    ask(at, VACATION_QUESTION)
    (message,) = answers(at)
    assert "cairn serve" in message.error[0].value


def test_a_locked_index_is_reported_in_plain_words(page, corpus_index):
    from retrieval.store.edge import EdgeStore

    holder = EdgeStore(corpus_index)  # another process's ingest, as far as the page can tell
    holder.count("cairn")
    try:
        at = page(corpus_index).run()
        assert not at.exception
        assert "open in another process" in at.sidebar.error[0].value
        ask(at, VACATION_QUESTION)
        assert "Stop that process" in answers(at)[0].error[0].value
    finally:
        holder.close()


def test_without_a_language_model_the_extractive_answer_says_why(page, corpus_index, tmp_path):
    at = page(corpus_index, CAIRN_LLM_PROVIDERS='["local", "extractive"]', CAIRN_LLM_MODEL_DIR=str(tmp_path / "no-models"))
    ask(at.run(), VACATION_QUESTION)
    notice = answers(at)[0].info[0].value
    assert "No language model answered" in notice and "model file missing" in notice and "make setup" in notice


def test_a_bad_configuration_is_reported_instead_of_the_page(page, corpus_index):
    at = page(corpus_index, CAIRN_LLM_PROVIDERS='["gpt-9"]').run()
    assert not at.exception
    assert "unknown answer provider 'gpt-9'" in at.error[0].value
    assert not at.chat_input  # nothing to ask until the configuration is fixed


def test_a_cached_answer_says_so_and_asks_fresh_on_a_click(page, corpus_index):
    at = page(corpus_index).run()
    ask(at, VACATION_QUESTION)
    first = at.session_state["turns"][0].response
    assert first.cache.outcome == "miss" and not [i for i in answers(at)[0].info if "answer cache" in i.value]
    at.button(key="clear").click().run()  # a new conversation (a follow-up is never served from the cache)
    ask(at, VACATION_QUESTION)  # the same question again: served from the cache
    second = at.session_state["turns"][0].response
    assert second.cache.outcome == "hit" and second.answer == first.answer
    notice = [i.value for i in answers(at)[0].info if "From the answer cache" in i.value]
    assert notice and "UTC" in notice[0]
    at.button(key="ask-fresh-0").click().run()
    assert not at.exception
    assert at.session_state["turns"][0].response.cache.outcome == "refresh"
    assert not [i for i in answers(at)[0].info if "From the answer cache" in i.value]


def test_a_question_the_documents_do_not_cover_is_answered_by_the_router_plainly(page, corpus_index):
    at = ask(page(corpus_index).run(), "Are we allowed to use ChatGPT or other generative AI tools for work?")
    (message,) = answers(at)
    response = at.session_state["turns"][0].response
    assert response.provider == "router" and response.route.signal == "dense" and response.context
    assert answer_text(message).startswith("The documents do not cover this.")
    (notice,) = [i.value for i in message.info]
    assert notice.startswith("**Not covered by the documents**: no language model was asked")
    assert "Extractive answer" not in notice
    assert "**Nearest sources** · not close enough to answer from" in markdown_of(message)
    assert any(c.value == "Answered by the router (before generation)" for c in message.caption)
    assert f"**[1] {response.context[0].title}**" in markdown_of(message)

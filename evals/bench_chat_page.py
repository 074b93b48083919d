"""The chat page timed as a user sees it: `cairn ui` with the default settings (local model,
default reranker) on a copy of the indexed sample corpus, asked the sample questions in Chromium
one after another. For each question, the time from pressing Enter until the source cards are on
screen, until the first answer text is, and until the answer is finished ("Answered by"), the
page read every 0.1 s.

The index is copied (the page locks the folder it serves, and must not answer from the answer
cache: it is turned off, so every question is answered from the documents).

    cairn bench chat [--limit 5]   (needs `make setup` and the sample corpus indexed: `make ingest-sample`)
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from evals.bench_answer import SampleQuestion, read_questions, sample_questions_file
from evals.load_service import free_port, log_tail, stop_process

CHROMIUM = Path("/usr/bin/chromium")
_CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]  # fmt: skip
_POLL_S = 0.1
_TIMED = ("sources_s", "first_text_s", "done_s", "server_first_token_s")
_ANSWER_TIMEOUT_S = 300.0
# The last answer's state: its found-source cards, its streamed text (the cursor "▌" follows it
# while tokens come) and its end (the final answer's caption).
_STATE_JS = """() => {
  const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
  const last = messages[messages.length - 1];
  if (!last) return {messages: 0};
  const text = last.innerText;
  return {
    messages: messages.length,
    sources: last.querySelector("[class*='st-key-found-'], [class*='st-key-source-']") !== null,
    writing: text.includes("\u258c"),
    done: text.includes("Answered by"),
  };
}"""


@dataclass
class PageTiming:
    number: int
    question: str
    sources_s: float | None  # Enter -> the first source card on screen
    first_text_s: float | None  # Enter -> the first answer text on screen (None: it came whole)
    done_s: float  # Enter -> "Answered by"
    answered_by: str
    server_first_token_s: float | None = None  # the service's clock, from the retrieval panel (local model)
    model: str | None = None  # the retrieval panel's account of the prompt and first token (local model)


@dataclass
class ChatPageBench:
    questions: int
    page_start_s: float  # `cairn ui` started -> the page ready to take a question
    load_average: tuple[float, float]
    timings: list[PageTiming]

    def p50(self, field: str) -> float | None:
        values = [getattr(t, field) for t in self.timings if getattr(t, field) is not None]
        return round(statistics.median(values), 2) if values else None


@contextmanager
def _chat_page(index: Path, collection: str, environ: Mapping[str, str], log: Path) -> Iterator[str]:
    """`cairn ui` serving ``index`` with ``environ``'s settings, the answer cache off."""
    port = free_port()
    env = dict(environ) | {
        "CAIRN_DATA_DIR": str(index),
        "CAIRN_COLLECTION": collection,
        "CAIRN_ANSWER_CACHE_ENABLED": "false",
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cairn", "ui", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"`cairn ui` exited early:\n{log_tail(log)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"`cairn ui` did not listen in 120 s:\n{log_tail(log)}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def _ask(page, item: SampleQuestion, messages_before: int) -> PageTiming:
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(item.question)
    asked = time.monotonic()
    box.press("Enter")
    seen: dict[str, float] = {}
    while "done" not in seen:
        elapsed = time.monotonic() - asked
        if elapsed > _ANSWER_TIMEOUT_S:
            raise RuntimeError(f"no answer to question {item.number} after {_ANSWER_TIMEOUT_S:g} s")
        state = page.evaluate(_STATE_JS)
        if state["messages"] >= messages_before + 2:  # the question's and the answer's
            for key in ("sources", "writing", "done"):
                if state[key]:
                    seen.setdefault(key, elapsed)
        time.sleep(_POLL_S)
    answer = page.get_by_test_id("stChatMessage").last.inner_text()
    by = next((line for line in answer.splitlines() if line.startswith("Answered by")), "")
    # The retrieval panel's lines on the stages and the model, once the panel is opened: the
    # service's own clock, which the browser sharing these cores does not slow.
    message = page.get_by_test_id("stChatMessage").last
    model = server_first_token_s = None
    if "Answered by local" in answer:
        message.get_by_text("Retrieval:").first.click()
        stages = message.get_by_text("Time per stage:").first
        stages.wait_for(timeout=10_000)
        if found := re.search(r"first token at ([\d,]+) ms", stages.inner_text()):
            server_first_token_s = round(int(found.group(1).replace(",", "")) / 1000, 2)
        model = message.get_by_text("Answer model:").first.inner_text()
    return PageTiming(
        number=item.number,
        question=item.question,
        sources_s=round(seen["sources"], 2) if "sources" in seen else None,
        first_text_s=round(seen["writing"], 2) if "writing" in seen else None,
        done_s=round(seen["done"], 2),
        answered_by=by.removeprefix("Answered by").strip(),
        server_first_token_s=server_first_token_s,
        model=model.removeprefix("Answer model: ").strip() if model else None,
    )


def bench_chat_page(
    index: Path,
    collection: str,
    questions: list[SampleQuestion],
    environ: Mapping[str, str] | None = None,
    log: Callable[[str], None] = print,
) -> ChatPageBench:
    """``questions`` asked in turn on `cairn ui` serving a copy of ``index``, started with
    ``environ`` (default: this process's environment, so the settings a user has)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"Chromium is missing at {CHROMIUM}: run `make setup`")
    with tempfile.TemporaryDirectory(prefix="cairn-bench-chat-") as scratch:
        copy = Path(shutil.copytree(index, Path(scratch) / "index"))
        environ = os.environ if environ is None else environ
        started = time.monotonic()
        page_log = Path(scratch) / "cairn-ui.log"
        with _chat_page(copy, collection, environ, page_log) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=_CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(url)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=300_000)
            page.get_by_test_id("stSidebar").get_by_text("Documents", exact=True).wait_for(timeout=300_000)
            page_start = time.monotonic() - started
            load_before = os.getloadavg()[0]
            timings = []
            for number, item in enumerate(questions):
                timing = _ask(page, item, messages_before=2 * number)
                timings.append(timing)
                log(
                    f"Q{item.number:>2} sources {timing.sources_s} s, first text {timing.first_text_s} s, "
                    f"done {timing.done_s} s ({timing.answered_by}); {timing.model or 'no model'}"
                )
            browser.close()
    load_average = (round(load_before, 2), round(os.getloadavg()[0], 2))
    return ChatPageBench(len(questions), round(page_start, 1), load_average, timings)


def markdown(bench: ChatPageBench) -> str:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"`cairn ui` with the default settings (answer cache off) on a copy of the sample index, asked "
        f"{bench.questions} sample questions in Chromium, one after another; the page read every "
        f"{_POLL_S:g} s. Load average {bench.load_average[0]:.1f} before, {bench.load_average[1]:.1f} after. "
        f"The page was ready {bench.page_start_s:.0f} s after `cairn ui` started.",
        "",
        "| | sources on screen s | first answer text on screen s | answer finished s | first token, service s |",
        "|---|---|---|---|---|",
        "| **p50** | " + " | ".join(f"**{s(bench.p50(field))}**" for field in _TIMED) + " |",
    ]
    for t in bench.timings:
        times = " | ".join(s(getattr(t, field)) for field in _TIMED)
        lines.append(f"| Q{t.number}: {t.question} ({t.answered_by}) | {times} |")
    lines += [
        "",
        "The last column is the service's own time to the model's first token, from the answer's "
        "retrieval panel (answers the local model wrote). Chromium runs on the same cores as the "
        "service here, and takes from the model's prompt reading what a user's own browser would not.",
        "",
        "What the model read, per answer (from the same panel):",
        "",
    ]
    lines += [f"- Q{t.number}: {t.model}" for t in bench.timings if t.model]
    return "\n".join(lines)


def register(bench_app) -> None:
    """`cairn bench chat`, added to the evals part's `cairn bench` group."""
    import typer
    from rich.console import Console

    @bench_app.command("chat")
    def bench_chat_command(
        limit: int = typer.Option(5, "--limit", min=1, help="How many sample questions to ask."),
        out: Path = typer.Option(Path("evals/reports/bench"), "--out", help="bench report folder"),
    ) -> None:
        """The chat page in Chromium: seconds to the sources, the first answer text, the end."""
        from evals.bench_report import rebuild, save_section
        from retrieval.settings import get_settings

        settings = get_settings()
        path = sample_questions_file()
        if not path.is_file():
            raise typer.BadParameter(f"{path} is missing (the sample questions)")
        if not settings.data_dir.is_dir():
            raise typer.BadParameter(f"no index at {settings.data_dir}: run `make ingest-sample` first")
        progress = Console(stderr=True)
        bench = bench_chat_page(
            settings.data_dir, settings.collection, read_questions(path, limit),
            log=lambda m: progress.print(m, highlight=False),
        )  # fmt: skip
        text = markdown(bench)
        payload = asdict(bench) | {"p50": {field: bench.p50(field) for field in _TIMED}}
        save_section(out, "chat-page", "The chat page in Chromium", text, payload, f"cairn bench chat --limit {limit}")
        Console().print(text)
        Console().print(f"report: {rebuild(out)}")

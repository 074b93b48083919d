"""Fixtures for the chat page tests: small real indexes built by the real ingest pipeline, and
the environment that points the page at one of them.

The embedded engine locks an index folder per open store, and the page keeps one client (one
open store) per configuration for the whole process, so every page configuration gets its
own copy of a pristine index.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "app" / "streamlit_app.py"
SAMPLE = REPO / "data" / "sample"
COLLECTION = "cairn"


def build_index(data_dir: Path, roots: dict[str, Path], encoders, parser_pool) -> Path:
    """``roots`` (source name -> folder) ingested by the real pipeline; the store is closed after."""
    from ingest.pipeline import IngestPipeline
    from retrieval.settings import Settings
    from retrieval.store.edge import EdgeStore

    settings = Settings(data_dir=data_dir, collection=COLLECTION, _env_file=None)
    store = EdgeStore(data_dir)
    pipeline = IngestPipeline(settings, store, *encoders, parser_pool=parser_pool)
    try:
        for source, root in roots.items():
            report = pipeline.run(root, source=source)
            assert not report.failures, report.failures
    finally:
        pipeline.close()
        store.close()
    return data_dir


def page_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The variables that point the page (in this process or `cairn ui`) at ``data_dir``."""
    env = {
        "CAIRN_DATA_DIR": str(data_dir),
        "CAIRN_COLLECTION": COLLECTION,
        "CAIRN_LLM_PROVIDERS": '["extractive"]',  # fast and deterministic, unless a test says otherwise
        "CAIRN_RERANKER": "none",
    }
    return env | overrides


def clean_environ() -> dict[str, str]:
    """This process's environment without Cairn's own settings (a developer's CAIRN_API_URL...)."""
    prefixes = ("CAIRN_", "QDRANT_", "COHERE_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@pytest.fixture(scope="session")
def pristine_corpus_index(tmp_path_factory, encoders, parser_pool, corpus_dir) -> Path:
    """The retrieval tests' company corpus (md, txt, html; an hr-only file) plus the finance source."""
    return build_index(tmp_path_factory.mktemp("ui-corpus-index"), corpus_dir, encoders, parser_pool)


@pytest.fixture()
def corpus_index(pristine_corpus_index, tmp_path) -> Path:
    return Path(shutil.copytree(pristine_corpus_index, tmp_path / "index"))


@pytest.fixture(scope="session")
def sample_data_index(tmp_path_factory, encoders, parser_pool) -> Path:
    """data/sample (the Northwind Robotics corpus that `make run` serves)."""
    return build_index(tmp_path_factory.mktemp("ui-sample-index"), {"sample": SAMPLE}, encoders, parser_pool)


@pytest.fixture()
def page(monkeypatch, tmp_path):
    """A function that sets the page's environment and returns a fresh AppTest of the page; run
    from an empty folder so no .env file or relative path of the checkout leaks in."""
    from streamlit.testing.v1 import AppTest

    def make(data_dir: Path, **overrides: str) -> AppTest:
        for name in [k for k in os.environ if k not in clean_environ()]:
            monkeypatch.delenv(name)
        for name, value in page_env(data_dir, **overrides).items():
            monkeypatch.setenv(name, value)
        workdir = tmp_path / "cwd"
        workdir.mkdir(exist_ok=True)
        monkeypatch.chdir(workdir)
        return AppTest.from_file(str(PAGE), default_timeout=300)

    return make


# --- access control and hostile content (tests/test_security_ui.py) ------------------------------

HANA_KEY = "hana-key-0123456789"  # public and hr
OMAR_KEY = "omar-key-9876543210"  # public only


def write_identities(path: Path, anonymous_groups: str = "[public]") -> Path:
    """An identities file with hana (hr) and omar (public; his key stored as its sha256)."""
    import hashlib

    omar_digest = hashlib.sha256(OMAR_KEY.encode()).hexdigest()
    path.write_text(
        f"anonymous_groups: {anonymous_groups}\n"
        "users:\n"
        f"  - {{user: hana, api_key: {HANA_KEY}, groups: [public, hr]}}\n"
        f"  - {{user: omar, api_key_sha256: {omar_digest}, groups: [public]}}\n",
        encoding="utf-8",
    )
    return path


HOSTILE_QUESTION = "What is the Zephyr launch code?"
HOSTILE_LINK = ("Zephyr runbook", "http://runbook.example/zephyr", "runbook.example")


def write_hostile_corpus(folder: Path, leak_url: str) -> Path:
    """A page whose title, section and text carry Markdown images pointing at ``leak_url`` (with
    what they would carry away in the address), and a Markdown link, next to an ordinary page."""
    label, url, _ = HOSTILE_LINK
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zephyr-launch.html").write_text(
        "<html><head><title>Zephyr</title></head><body><main>"
        f"<h1>Zephyr ![t]({leak_url}/title.png?d=title) launch notes</h1>"
        f"<h2>Launch ![s]({leak_url}/section.png?d=section) codes</h2>"
        f"<p>The Zephyr launch code is ZX-42 ![x]({leak_url}/leak.png?d=secret) and the [{label}]({url}) "
        "lists every step.</p>"
        "<p>Zephyr launches happen on Tuesdays after the safety review.</p>"
        "</main></body></html>",
        encoding="utf-8",
    )
    (folder / "canteen.md").write_text(
        "# Canteen\n\nThe canteen opens at noon and serves soup on Fridays.\n", encoding="utf-8"
    )
    return folder


class LeakServer:
    """A local web server that counts every request: a browser that loads an image from a
    document or an answer shows up here."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                server.paths.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "image/png")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def leak_server():
    server = LeakServer()
    yield server
    server.close()


# --- `cairn ui` in a subprocess, for Chromium (tests/test_ui_sources_first.py) ---------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_ui(
    env: dict[str, str], folder: Path, timeout_s: float = 120, stop: signal.Signals = signal.SIGINT
) -> Iterator[str]:
    """`cairn ui` with ``env`` (the checkout's packages first), run from ``folder``; yields its
    address once it listens, stops it with ``stop`` after (SIGINT: Ctrl-C; killed if it has not
    stopped 30 s later), and prints its log (shown on failure)."""
    import socket
    import subprocess
    import sys
    import time

    port = free_port()
    log = folder / "cairn-ui.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("cairn")), "ui", "--port", str(port)],
            env=env | {"PYTHONPATH": str(REPO)}, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert process.poll() is None, f"`cairn ui` exited early:\n{log.read_text()[-3000:]}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"`cairn ui` did not listen:\n{log.read_text()[-3000:]}"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(stop)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text()[-3000:])

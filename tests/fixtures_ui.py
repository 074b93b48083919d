"""Fixtures for the chat page tests: small real indexes built by the real ingest pipeline, and
the environment that points the page at one of them.

The embedded engine locks an index folder per open store, and the page keeps one client (one
open store) per configuration for the whole process, so every page configuration gets its
own copy of a pristine index.
"""

from __future__ import annotations

import os
import shutil
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

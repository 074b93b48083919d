"""Shared fixtures, one module per part (loaded once per session, so models load once)."""

import sys

import pytest

pytest_plugins = [
    "fixtures_ingest", "fixtures_retrieval", "fixtures_answer", "fixtures_evals", "fixtures_ui", "fixtures_deploy",
    "fixtures_live",
]


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Streamlit's AppTest runs a page as ``__main__`` and leaves it there; a parser process
    spawned later in the session would re-run that page (or a generated script) and die."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main

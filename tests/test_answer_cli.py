"""`cairn ask` end to end in-process: a real index on disk, settings from the environment."""

from __future__ import annotations

import json

import pytest
from fixtures_answer import index_corpus
from typer.testing import CliRunner

from cairn.cli import app
from retrieval.settings import get_settings


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory, encoders, corpus_dir):
    data_dir = tmp_path_factory.mktemp("ask-index")
    settings, store = index_corpus(data_dir, corpus_dir, encoders)
    store.close()  # the CLI opens the index itself
    return {
        "CAIRN_DATA_DIR": str(data_dir),
        "CAIRN_COLLECTION": settings.collection,
        "CAIRN_RERANKER": "none",
        "CAIRN_LLM_PROVIDERS": '["extractive"]',
        "CAIRN_IDENTITIES_FILE": "",
    }


def _ask(env, monkeypatch, *args):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CAIRN_IDENTITIES_FILE")
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["ask", *args])
    finally:
        get_settings.cache_clear()


def test_ask_json_prints_the_answer_response(cli_env, monkeypatch):
    result = _ask(cli_env, monkeypatch, "What is the daily meal allowance abroad?", "--json")
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert set(response) >= {
        "answer", "provider", "fallbacks", "rewritten_query", "citations",
        "invalid_citations", "context", "timings_ms",
    }
    assert response["provider"] == "extractive"
    cited = response["citations"][0]
    assert set(cited) == {"n", "path", "title", "page", "snippet", "chunk_ids", "attributed", "supported"}
    assert cited["attributed"] is False  # the extractive answer writes its own marks
    assert cited["path"] == "handbook/expenses.md" and "60 euros" in cited["snippet"]


def test_ask_streams_the_answer_then_its_sources(cli_env, monkeypatch):
    result = _ask(cli_env, monkeypatch, "What is the daily meal allowance abroad?")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "60 euros" in out
    assert out.index("60 euros") < out.index("Sources") < out.index("handbook/expenses.md")
    assert "extractive, no language model" in out


def test_ask_refuses_an_unknown_provider(cli_env, monkeypatch):
    result = _ask(cli_env, monkeypatch, "Anything?", "--provider", "gpt5")
    assert result.exit_code == 2
    assert "choose from local, cohere, openai, extractive" in " ".join(result.output.split())

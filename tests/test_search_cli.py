"""`cairn search` and `cairn serve` as a user runs them: real processes over a real index."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fixtures_retrieval import RESTRICTED_PATH, RESTRICTED_PHRASE, retrieval_settings

REPO = Path(__file__).resolve().parent.parent


def _env(settings, **extra) -> dict[str, str]:
    env = os.environ | {
        "CAIRN_DATA_DIR": str(settings.data_dir),
        "CAIRN_COLLECTION": settings.collection,
        "CAIRN_RERANKER": "none",
        "CAIRN_IDENTITIES_FILE": "",
        "COHERE_API_KEY": "",
    }
    env.pop("QDRANT_URL", None)
    return {k: v for k, v in (env | extra).items() if v != ""}


def cairn(settings, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cairn", *args],
        cwd=REPO,
        env=_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_queries_file_gives_one_json_line_per_query(cli_index, tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps(q)
            for q in [
                {"id": "q1", "text": "how many vacation days can be carried over"},
                {"id": "q2", "text": "meal allowance abroad"},
                {"id": "q3", "text": RESTRICTED_PHRASE},
            ]
        )
        + "\n"
    )
    run = cairn(cli_index, "search", "--queries", str(queries), "--json", "--top-k", "5")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["query_id"] for r in rows] == ["q1", "q2", "q3"]
    for row in rows:
        assert len(row["hits"]) == 5
        assert set(row["timings_ms"]) == {"encode", "search", "rerank", "assemble", "total"}
        for rank, hit in enumerate(row["hits"], 1):
            assert {"doc_id", "path", "title", "section", "page", "chunk_index", "text"} <= set(hit)
            assert hit["scores"]["fused"]["rank"] == rank
            assert set(hit["scores"]) == {"dense", "sparse", "fused", "rerank"}
    assert rows[0]["hits"][0]["path"].endswith("vacation-policy.md") or "vacation" in rows[0]["hits"][0]["path"]
    assert rows[1]["hits"][0]["path"] == "handbook/expenses.md"
    assert RESTRICTED_PATH not in run.stdout  # the CLI's anonymous caller is public-only


def test_single_query_with_filters_as_a_table_and_as_json(cli_index):
    table = cairn(
        cli_index,
        "search",
        "rollback a release",
        "--file-type",
        "md",
        "--path-prefix",
        "engineering",
        "--no-rerank",
        COLUMNS="200",  # rich's width off a terminal
    )
    assert table.returncode == 0, table.stderr
    assert "engineering/deploy-guide.md" in table.stdout and "handbook" not in table.stdout
    assert "encode" in table.stdout and "reranker: none" in table.stdout
    as_json = cairn(cli_index, "search", "rollback a release", "--mode", "sparse", "--json", "--source", "company")
    data = json.loads(as_json.stdout)
    assert data["hits"] and all(h["scores"]["dense"] is None for h in data["hits"])
    assert data["rerank"]["applied"] is False and data["rerank"]["note"]


def test_no_rerank_does_not_load_the_reranker(cli_index):
    result = cairn(cli_index, "search", "rollback a release", "--no-rerank", "--json", CAIRN_RERANKER="auto")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rerank"]["reranker"] == "none"  # not embedding:<model>


def test_api_key_on_the_command_line(cli_index, tmp_path):
    identities = tmp_path / "identities.yaml"
    identities.write_text("users:\n  - user: hana\n    api_key: hr-key-0123456789abcdef\n    groups: [public, hr]\n")
    env = {"CAIRN_IDENTITIES_FILE": str(identities)}
    run = cairn(cli_index, "search", RESTRICTED_PHRASE, "--json", "--api-key", "hr-key-0123456789abcdef", **env)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["hits"][0]["path"] == RESTRICTED_PATH
    bad = cairn(cli_index, "search", "x", "--api-key", "wrong-key-0123456789", **env)
    assert bad.returncode == 2 and "unknown API key" in bad.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["search"], "give a question or --queries"),
        (["search", "x", "--fusion", "max"], "--fusion"),
        (["search", "x", "--mode", "keyword"], "--mode"),
        (["search", "x", "--modified-after", "2025-01-01", "--modified-before", "2024-01-01"], "modified_after"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(args, message):
    # In-process: these fail before any setting is read or model loaded.
    from typer.testing import CliRunner

    from cairn.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize(
    "line,expected",
    [('{"text": "no id"}', "bad.jsonl:2"), ('{"id": "q2", "text": "' + "x" * 2001 + '"}', "bad.jsonl: query q2")],
)
def test_a_bad_queries_line_names_the_file_and_line(tmp_path, line, expected):
    from typer.testing import CliRunner

    from cairn.cli import app

    queries = tmp_path / "bad.jsonl"
    queries.write_text('{"id": "q1", "text": "vacation"}\n' + line + "\n")
    result = CliRunner().invoke(app, ["search", "--queries", str(queries), "--json"])
    assert result.exit_code == 2 and expected in result.output


def test_no_index_says_to_ingest(tmp_path):
    settings = retrieval_settings(tmp_path / "empty")
    run = cairn(settings, "search", "vacation")
    assert run.returncode == 3 and "cairn ingest" in run.stderr  # one exit-code table: 3 = index unavailable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_search_and_health(cli_index):
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "cairn", "serve", "--port", str(port)],
        cwd=REPO,
        env=_env(cli_index),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"{url}/health", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(1)
        assert health is not None, process.stdout.read() if process.poll() is not None else "server did not start"
        assert health.status_code == 200 and health.json()["chunks"] > 0
        search = httpx.post(f"{url}/search", json={"query": "meal allowance abroad", "top_k": 3}, timeout=60)
        assert search.status_code == 200
        assert search.json()["hits"][0]["path"] == "handbook/expenses.md"
        assert httpx.get(f"{url}/docs", timeout=10).status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""`cairn bench load` against a real HTTP server on a loopback port: every request counted, the
report's numbers agree with each other, failures sorted by kind, and only loopback targets."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import uvicorn
from fixtures_answer import answer_settings
from typer.testing import CliRunner

from answers.service import AnswerService
from cairn.api.app import create_app
from cairn.cli import app as cli
from evals.bench_load import (
    DEFAULT_QUESTIONS,
    LoadConfigError,
    check_loopback,
    parse_mix,
    questions_from_markdown,
    run_load,
)
from retrieval.access import Identities, IdentitiesConfig, UserEntry

KEY = "load-key-0123456789abcdef"


@pytest.fixture(scope="module")
def live_url(answer_search):
    """Cairn's app served by uvicorn on a free loopback port (the extractive answer chain: no
    model to load); a key is required, so --api-key is exercised."""
    identities = Identities(
        IdentitiesConfig(anonymous_groups=[], users=[UserEntry(user="loader", api_key=KEY, groups=["public"])])
    )
    answers = AnswerService(answer_search, answer_settings(llm_providers=["extractive"]))
    app = create_app(answer_search, identities, answers=answers)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def test_load_on_a_live_server_counts_every_request(live_url, tmp_path):
    out = tmp_path / "bench"
    args = ["bench", "load", "--url", live_url, "--clients", "4", "--duration", "5"]
    args += ["--mix", "search=2,context=1,answer=1", "--api-key", KEY, "--out", str(out)]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "/search" in result.output and "lost 0" in result.output

    section = json.loads((out / "load.json").read_text())
    data = section["data"]
    routes = {r["route"]: r for r in data["routes"]}
    assert set(routes) == {"search", "context", "answer"}
    assert data["lost"] == 0 and data["errors"] == 0
    assert data["sent"] == data["answered"] == data["ok"] == sum(r["sent"] for r in routes.values()) > 0
    assert data["server"]["status"] == "ok" and data["server"]["chunks"] > 0
    for route in routes.values():
        assert route["sent"] == route["answered"] == route["ok"] > 0, route
        assert route["errors"] == {} and route["lost"] == 0
        assert route["p50_ms"] <= route["p95_ms"] <= route["p99_ms"]
        assert route["requests_per_s"] == pytest.approx(route["ok"] / route["span_s"], rel=0.01)
        assert 0 < route["span_s"] <= data["elapsed_s"]
    # The mix is honoured: search has twice the weight of the others.
    assert routes["search"]["sent"] > max(routes["context"]["sent"], routes["answer"]["sent"])

    report = (out / "report.md").read_text()
    assert "## Load: concurrent clients" in report
    assert f"`cairn bench load --url {live_url} --clients 4 --duration 5 --mix search=2,context=1,answer=1" in report
    assert KEY not in report and KEY not in (out / "results.json").read_text()


def test_the_request_budget_stops_a_run(live_url):
    bench = run_load(live_url, clients=3, duration_s=60, queries=["vacation days"], max_requests=7, api_key=KEY)
    assert bench.sent == bench.ok == 7 and bench.lost == 0
    assert any("request budget" in note for note in bench.notes)


def test_a_missing_api_key_is_refused_before_the_run(live_url):
    with pytest.raises(LoadConfigError, match="401"):
        run_load(live_url, clients=1, duration_s=1, queries=["x"])


class _FaultyHandler(BaseHTTPRequestHandler):
    """/health answers; /search says 503; /context hangs up without an answer; /answer streams
    tokens and stops before its final event."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200, b'{"status": "ok"}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/search":
            self._reply(503, b'{"detail": "index unavailable"}')
        elif self.path == "/context":
            self.close_connection = True  # the request went out; no response comes back
        else:
            self._reply(200, b"event: token\ndata: {}\n\n", "text/event-stream")


@pytest.fixture()
def faulty_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FaultyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_failures_are_counted_by_kind_and_unanswered_ones_as_lost(faulty_url):
    bench = run_load(
        faulty_url,
        clients=2,
        duration_s=30,
        mix={"search": 1, "context": 1, "answer": 1},
        queries=["q"],
        max_requests=60,
        warmup=False,
    )
    routes = {r.route: r for r in bench.routes}
    assert bench.sent == 60 and bench.ok == 0
    assert routes["search"].errors == {"HTTP 503": routes["search"].sent} and routes["search"].lost == 0
    assert routes["search"].answered == routes["search"].sent  # a 503 is an answer, not a loss
    assert routes["context"].errors == {"connection": routes["context"].sent}
    assert routes["context"].lost == routes["context"].sent
    assert routes["answer"].errors == {"stream incomplete": routes["answer"].sent}
    assert routes["answer"].lost == routes["answer"].sent
    assert all(r.p50_ms is None for r in bench.routes)  # no successful request, no percentile


def test_nothing_listening_is_a_usage_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = CliRunner().invoke(cli, ["bench", "load", "--url", f"http://127.0.0.1:{port}", "--duration", "1"])
    assert result.exit_code == 2 and "no service answers" in result.output


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1:8000",
        "http://0.0.0.0:8000",
        "http://192.168.1.10",
        "https://example.com",
        "http://127.0.0.1.example.com:8000",
        "ftp://127.0.0.1/",
    ],
)
def test_a_non_loopback_url_is_refused(url, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "load", "--url", url, "--duration", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--url" in result.output
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://127.0.0.2:9/", "http://[::1]:8000", "http://localhost"]
)
def test_loopback_urls_are_accepted(url):
    assert check_loopback(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "spec,message",
    [("search=0", "at least one route"), ("upload=1", "unknown route"), ("search=x", "must be a number")],
)
def test_a_bad_mix_says_what_is_wrong(spec, message):
    with pytest.raises(LoadConfigError, match=message):
        parse_mix(spec)
    assert parse_mix("search=1,context=0,answer=0.5") == {"search": 1.0, "answer": 0.5}


def test_the_sample_questions_are_the_default_queries():
    questions = questions_from_markdown(Path(__file__).resolve().parent.parent / DEFAULT_QUESTIONS)
    assert len(questions) == 12
    assert questions[0] == "What is the per diem for a full travel day in Germany?"
    assert all("|" not in q for q in questions)


def test_a_queries_file_is_read_and_a_bad_line_named(tmp_path):
    from evals.bench_load import load_queries

    good = tmp_path / "q.jsonl"
    good.write_text('{"id": "1", "text": "vacation days"}\n\n{"id": "2", "text": "meal allowance"}\n')
    assert load_queries(good) == (["vacation days", "meal allowance"], str(good))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "text": "ok"}\n{"id": "2"}\n')
    with pytest.raises(LoadConfigError, match="bad.jsonl:2"):
        load_queries(bad)
    with pytest.raises(LoadConfigError, match="missing.jsonl"):
        load_queries(tmp_path / "missing.jsonl")


# --- services the bench starts itself (--serve) and the reliability page ----------------------


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory) -> Path:
    """Two short public documents: enough for hits, fast to index."""
    root = tmp_path_factory.mktemp("load-corpus")
    (root / "travel.md").write_text(
        "# Travel policy\n\nThe per diem for a full travel day in Germany is 28 euros. Hotels are booked "
        "through the travel portal. Trains are second class unless the trip takes more than four hours.\n"
    )
    (root / "leave.md").write_text(
        "# Leave policy\n\nEmployees get 25 days of annual leave. Unused days carry over until the end of "
        "March. Sick leave needs a doctor's note from the third day.\n"
    )
    return root


def test_a_started_server_backend_service_with_the_fake_provider_loses_nothing(small_corpus, tmp_path):
    """`--serve server-local`: the index built through qdrant-client's local mode and `cairn serve
    --qdrant-local` over it; `--provider fake-openai`: answers from the fake server on loopback."""
    out = tmp_path / "bench"
    args = ["bench", "load", "--serve", "server-local", "--corpus", str(small_corpus), "--provider", "fake-openai"]
    args += ["--clients", "2", "--duration", "3", "--mix", "search=2,context=1,answer=1", "--label", "t"]
    result = CliRunner().invoke(cli, args + ["--out", str(out)], env={"COLUMNS": "200", "CAIRN_RERANKER": "none"})
    assert result.exit_code == 0, result.output

    data = json.loads((out / "load-t.json").read_text())["data"]
    routes = {r["route"]: r for r in data["routes"]}
    assert data["lost"] == 0 and data["errors"] == 0 and data["sent"] == data["ok"] > 0
    assert data["server"]["backend"] == "server" and data["server"]["chunks"] > 0
    assert data["service"]["backend"] == "server-local" and data["service"]["providers"] == ["openai", "extractive"]
    assert data["service"]["files"] == 2
    assert routes["answer"]["ok"] > 0 and routes["answer"]["providers"] == {"openai": routes["answer"]["ok"]}
    assert len(data["load_average"]["before"]) == 3
    report = (out / "report.md").read_text()
    assert "## Load: concurrent clients (t)" in report and "qdrant-client's local mode" in report
    assert "`cairn bench load --serve server-local --corpus" in report and "--provider fake-openai" in report
    assert "Answers written by: openai" in report


def test_the_reliability_page_is_written_from_a_run_and_the_code(small_corpus, tmp_path):
    from bad_inputs import KINDS

    from evals.reliability import FAULT_GROUPS, SCENARIOS

    doc, out = tmp_path / "reliability.md", tmp_path / "bench"
    args = ["bench", "reliability", "--only", "search-embedded", "--clients", "2", "--duration", "3"]
    args += ["--corpus", str(small_corpus), "--doc", str(doc), "--out", str(out)]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output

    section = json.loads((out / "load-search-embedded.json").read_text())
    assert section["data"]["lost"] == 0 and section["data"]["server"]["backend"] == "embedded"
    page = doc.read_text()
    assert "cairn bench reliability --clients 2 --duration 3" in page
    assert "- 2 clients x 3 s on `/search`, embedded: **met** (0 errors, 0 lost;" in page
    assert section["markdown"].strip() in page  # the measured table, as saved
    assert page.count("not measured") >= len(SCENARIOS) - 1  # the others: never run here
    assert f"a corpus of {len(KINDS)} hostile or broken kinds" in page
    assert all(f"| {kind.kind} |" in page for kind in KINDS)
    assert all(f"(`{group.module}`)" in page for group in FAULT_GROUPS)
    assert "(`test_a_request_past_the_admitted_answers_is_refused_at_once`)" in page


def test_a_fault_group_that_matches_no_test_is_an_error():
    from evals.reliability import FaultGroup, ReliabilityError, fault_tests

    with pytest.raises(ReliabilityError, match="no test matches"):
        fault_tests(FaultGroup("gone", "nothing", "tests/test_faults_qdrant.py", ("*renamed_away*",)))


def test_the_fake_provider_answers_from_the_first_document_with_a_citation():
    from answers.prompt import build_answer_messages
    from evals.fake_openai import NO_ANSWER, reply_for
    from retrieval.search_schemas import ContextBlock

    text = "# Leave\n\nEmployees get 25 days of annual leave. Unused days carry over."
    block = ContextBlock(
        n=1, doc_id="d", path="leave.md", title="Leave", section="", page=None, chunk_ids=["c"], text=text, tokens=20
    )
    messages = [{"role": m.role.value, "content": m.content} for m in build_answer_messages("Leave?", [block])]
    assert reply_for(messages) == "Employees get 25 days of annual leave [1]."
    assert reply_for([{"role": "user", "content": "no documents here"}]) == NO_ANSWER


@pytest.mark.parametrize(
    "args,message",
    [
        (["--provider", "local"], "give --serve too"),
        (["--serve", "cluster"], "--serve 'cluster'"),
        (["--serve", "embedded", "--provider", "gpt"], "--provider 'gpt'"),
        (["--serve", "embedded", "--url", "http://127.0.0.1:9"], "not both"),
    ],
)
def test_bad_serve_options_are_refused_before_anything_starts(args, message, tmp_path):
    result = CliRunner().invoke(cli, ["bench", "load", *args, "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and message in result.output
    assert not any(tmp_path.iterdir())


class _RefusingHandler(_FaultyHandler):
    """Every answer refused as an overloaded service does: 503 with Retry-After."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"detail": "too many answers in flight"}'
        self.send_response(503)
        self.send_header("Retry-After", "30")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_refusal_with_retry_after_is_its_own_kind_and_not_lost():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        bench = run_load(url, clients=2, duration_s=30, mix={"answer": 1}, queries=["q"], max_requests=10, warmup=False)
    finally:
        server.shutdown()
        server.server_close()
    (answer,) = bench.routes
    assert answer.errors == {"HTTP 503 + Retry-After": 10} and answer.lost == 0 and answer.answered == 10

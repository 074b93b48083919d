"""The API against a curious colleague and an anonymous caller (issue 16): scores that say
nothing about documents the caller cannot see, errors that name a request id instead of the
server's internals, and limits on what one request or one caller may cost."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from fixtures_retrieval import HR, PUBLIC, retrieval_settings

from answers.service import AnswerService
from cairn.api.app import create_app
from retrieval.access import Identities, IdentitiesConfig, UserEntry
from retrieval.rerank import NoReranker
from retrieval.search_schemas import SearchRequest
from retrieval.service import SearchService
from retrieval.store import StoreError

HR_KEY = "hr-key-0123456789abcdef"
STAFF_KEY = "staff-key-0123456789abcdef"
SECRET = "qdrant said: segment 7f3a checksum mismatch in /var/lib/qdrant/storage"
QDRANT_URL = "http://qdrant.internal:6333"


@pytest.fixture(scope="module")
def identities():
    return Identities(
        IdentitiesConfig(
            anonymous_groups=["public"],
            users=[
                UserEntry(user="hana", api_key=HR_KEY, groups=["public", "hr"]),
                UserEntry(user="sam", api_key=STAFF_KEY, groups=["public"]),
            ],
        )
    )


# --- 8: scores say nothing about documents the caller cannot see ---------------------------------

CODENAME = "Kestrel"
_PUBLIC_FILES = {
    "projects/kestrel.md": f"""# Project {CODENAME}

## Launch plan

{CODENAME} launches in the spring. The launch budget covers the marketing campaign, two support
engineers and the translation of the help centre into four languages.

## Risks

The main risk is the payment provider migration, which must finish before the {CODENAME} launch.
""",
    "projects/roadmap.md": f"""# Roadmap

## Next year

The roadmap lists three projects: {CODENAME}, the mobile redesign and the data warehouse. Each
project asks for its budget in the autumn planning round.
""",
    "handbook/budget.md": """# Budget process

## Planning round

Every team submits its budget in October. The finance team reviews each budget line, and the
directors approve the final budget in December. A launch budget is reviewed separately.
""",
    "handbook/launches.md": """# Launch checklist

## Before a launch

Announce the launch date two weeks ahead, brief the support team and prepare the release notes.
""",
    "cairn-acl.yaml": 'rules:\n  - pattern: "hr/**"\n    groups: ["hr"]\n',
}
# hr-only files full of the codename: what a public caller must not be able to count.
_RESTRICTED_FILES = {
    f"hr/kestrel-staffing-{n}.md": f"""# {CODENAME} staffing {n}

## People

{CODENAME} {CODENAME} hiring plan {n}: the {CODENAME} team grows by {n} engineers. {CODENAME} salaries
are confidential. {CODENAME} offers go out in March. {CODENAME} {CODENAME} {CODENAME}.
"""
    for n in range(1, 7)
}
_QUERIES = [CODENAME, f"{CODENAME} launch budget", f"what is the budget for the {CODENAME} launch?"]


def _write(root, files) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _indexed_service(kind, data_dir, root, encoders, parser_pool) -> SearchService:
    from fixtures_retrieval import _open_backend

    from ingest.pipeline import IngestPipeline

    # One chunk per write batch: a chunk's embedding then never depends on what was padded
    # beside it, so the two indexes hold the very same vectors for the public chunks.
    settings = retrieval_settings(data_dir, ingest_write_batch=1)
    store = _open_backend(kind, data_dir)
    dense, sparse = encoders
    report = IngestPipeline(settings, store, dense, sparse, parser_pool=parser_pool).run(root, source="company")
    assert not report.failures, report.failures
    return SearchService(settings, store, dense, sparse, NoReranker())


@pytest.fixture(scope="module", params=["edge", "server"])
def twin_services(request, tmp_path_factory, encoders, parser_pool):
    """The same public corpus indexed twice: alone, and beside hr-only files full of the codename."""
    base = tmp_path_factory.mktemp(f"twins-{request.param}")
    _write(base / "plain", _PUBLIC_FILES)
    _write(base / "with-hr", _PUBLIC_FILES | _RESTRICTED_FILES)
    plain = _indexed_service(request.param, base / "plain-index", base / "plain", encoders, parser_pool)
    with_hr = _indexed_service(request.param, base / "with-hr-index", base / "with-hr", encoders, parser_pool)
    yield plain, with_hr
    plain.close()
    with_hr.close()


def _seen(service: SearchService, identity, query: str, **options) -> list[tuple]:
    request = SearchRequest(query=query, top_k=20, rerank=False, **options)
    return [(h.id, h.path, h.scores.model_dump()) for h in service.search(request, identity).hits]


@pytest.mark.parametrize("query", _QUERIES)
@pytest.mark.parametrize("options", [{}, {"fusion": "dbsf"}, {"mode": "sparse"}], ids=["rrf", "dbsf", "sparse"])
def test_public_scores_and_ranks_ignore_restricted_documents(twin_services, query, options):
    plain, with_hr = twin_services
    # The hr files are there, and full of the term, for whoever may see them.
    assert any(path.startswith("hr/") for _, path, _ in _seen(with_hr, HR, query, **options))
    seen = _seen(plain, PUBLIC, query, **options)
    assert any(scores["sparse"] for _, _, scores in seen)  # the term did score
    assert _seen(with_hr, PUBLIC, query, **options) == seen


def test_context_scores_ignore_restricted_documents(twin_services):
    plain, with_hr = twin_services
    request = SearchRequest(query=f"{CODENAME} launch budget", top_k=10, rerank=False)
    a, b = plain.context(request, PUBLIC), with_hr.context(request, PUBLIC)
    assert [h.model_dump() for h in b.hits] == [h.model_dump() for h in a.hits]
    assert [blk.model_dump() for blk in b.blocks] == [blk.model_dump() for blk in a.blocks]


# --- 9: errors name a request id, the log has the details ----------------------------------------


class _BrokenStore:
    """The real store, except that every read fails the way a broken index does: with its path,
    a URL and the engine's own words in the message."""

    def __init__(self, store, error: Exception) -> None:
        self._store = store
        self._error = error

    def __getattr__(self, name):
        return getattr(self._store, name)

    def _fail(self, *args, **kwargs):
        raise self._error

    hybrid_query = count = scroll = retrieve = collection_exists = _fail


def _broken_app(service, identities, error: Exception):
    broken = SearchService(
        service.settings, _BrokenStore(service.store, error), service.dense, service.sparse, NoReranker()
    )
    app = create_app(broken, identities)
    app.state.answers = AnswerService(
        broken, service.settings.model_copy(update={"llm_providers": ["extractive"]}).answers
    )
    return app


def _store_error(service) -> StoreError:
    return StoreError(f"cannot open the index at {service.settings.data_dir} ({QDRANT_URL}): {SECRET}")


def _internals(service) -> list[str]:
    return [str(service.settings.data_dir), QDRANT_URL, SECRET, "checksum"]


def _logged(caplog, request_id: str) -> str:
    """Every log line that names ``request_id``, with its traceback."""
    lines = [r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records if request_id in r.getMessage()]
    assert lines, f"nothing was logged for request {request_id}"
    return "\n".join(lines)


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def _assert_hides_internals(service, text: str) -> None:
    for internal in _internals(service):
        assert internal not in text, internal


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("post", "/search", {"query": "vacation"}),
        ("post", "/context", {"query": "vacation"}),
        ("post", "/answer", {"question": "How much leave?"}),
        ("get", "/health", None),
    ],
)
def test_a_store_error_names_a_request_id_not_the_internals(service, identities, caplog, method, path, body):
    with TestClient(_broken_app(service, identities, _store_error(service))) as client, caplog.at_level(logging.INFO):
        response = client.request(method, path, json=body)
    assert response.status_code == 503
    request_id = response.headers["x-request-id"]
    _assert_hides_internals(service, response.text)
    assert request_id in response.text
    details = _logged(caplog, request_id)
    assert SECRET in details and str(service.settings.data_dir) in details


def test_an_unexpected_error_is_a_500_with_a_request_id(service, identities, caplog):
    error = RuntimeError(f"{SECRET} at {service.settings.data_dir}")
    with TestClient(_broken_app(service, identities, error)) as client, caplog.at_level(logging.INFO):
        response = client.post("/search", json={"query": "vacation"})
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    _assert_hides_internals(service, response.text)
    assert response.json()["request_id"] == request_id
    assert SECRET in _logged(caplog, request_id)


@pytest.mark.parametrize("error", ["store", "unexpected"])
def test_the_answer_stream_error_event_names_a_request_id_not_the_internals(service, identities, caplog, error):
    failure = _store_error(service) if error == "store" else ValueError(f"{SECRET} at {service.settings.data_dir}")
    with TestClient(_broken_app(service, identities, failure)) as client, caplog.at_level(logging.INFO):
        response = client.post("/answer", json={"question": "How much leave?", "stream": True})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    kind, data = _sse_events(response.text)[-1]
    assert kind == "error"
    _assert_hides_internals(service, response.text)
    assert data["request_id"] == request_id and request_id in data["detail"]
    assert SECRET in _logged(caplog, request_id)


def test_every_response_carries_its_own_request_id(service, identities):
    with TestClient(create_app(service, identities)) as client:
        responses = [
            client.post("/search", json={"query": "vacation", "rerank": False}),
            client.post("/search", json={"query": "vacation"}, headers={"X-API-Key": "wrong-key-0123456789"}),
            client.post("/search", json={"query": ""}),
            client.get("/no-such-route"),
        ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids) and len(set(ids)) == len(ids)
    assert [r.status_code for r in responses] == [200, 401, 422, 404]
    for response in responses[1:]:  # every error body names it too
        assert response.json()["request_id"] == response.headers["x-request-id"]


# --- 10: what one request, and one caller, may cost ----------------------------------------------


def _limited_app(service, identities, **limits):
    from cairn.api.limits import ApiLimits

    return create_app(
        service, identities, limits=ApiLimits(**({"max_body_bytes": 4096, "rate_per_s": 100.0, "burst": 100} | limits))
    )


def test_an_oversize_body_is_413_before_parsing_and_before_the_key_check(service, identities, caplog):
    big = json.dumps({"query": "vacation", "filters": {"path_prefix": "x" * 10_000}})
    json_type = {"content-type": "application/json"}
    with TestClient(_limited_app(service, identities)) as client, caplog.at_level(logging.INFO):
        # A declared length over the limit: refused before a byte is read, whatever the key.
        for headers in ({}, {"X-API-Key": "wrong-key-0123456789"}):
            response = client.post("/search", content=big, headers=headers | json_type)
            assert response.status_code == 413, response.text
            assert response.headers["x-request-id"]
        # Without a Content-Length (chunked), the body is counted as it arrives.
        chunks = iter([big[:3000].encode(), big[3000:].encode()])
        chunked = client.post("/search", content=chunks, headers={"X-API-Key": "wrong-key-0123456789"} | json_type)
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["request_id"] == chunked.headers["x-request-id"]
        assert "4096 bytes" in chunked.json()["detail"]
        # Not a byte reaches the JSON parser: malformed JSON is refused for its size, not its form.
        garbage = client.post("/search", content=iter([b"{" * 5000, b"{" * 5000]), headers=json_type)
        assert garbage.status_code == 413
        assert client.post("/search", json={"query": "vacation", "rerank": False}).status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # a refusal, not a failure


@pytest.mark.parametrize(
    "filters,field",
    [
        ({"file_types": ["md"] * 51}, "file_types"),
        ({"sources": ["company"] * 51}, "sources"),
        ({"file_types": ["m" * 33]}, "file_types"),
        ({"sources": ["s" * 201]}, "sources"),
        ({"path_prefix": "p" * 1001}, "path_prefix"),
    ],
)
def test_over_long_filter_lists_are_422_naming_the_field(service, identities, filters, field):
    with TestClient(create_app(service, identities)) as client:
        for path, body in (("/search", {"query": "x"}), ("/context", {"query": "x"}), ("/answer", {"question": "x"})):
            response = client.post(path, json=body | {"filters": filters})
            assert response.status_code == 422, (path, response.text)
            assert field in response.text


def test_filter_lists_within_the_bounds_are_accepted(service, identities):
    with TestClient(create_app(service, identities)) as client:
        body = {
            "query": "vacation",
            "rerank": False,
            "filters": {"file_types": ["md"] * 50, "sources": ["company"] * 50},
        }
        assert client.post("/search", json=body).status_code == 200


def test_a_caller_over_its_rate_gets_429_with_retry_after(service, identities):
    with TestClient(_limited_app(service, identities, rate_per_s=0.01, burst=3)) as client:
        hana = {"X-API-Key": HR_KEY}
        codes = [client.get("/documents", headers=hana).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        refused = client.get("/documents", headers=hana)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["request_id"] == refused.headers["x-request-id"]
        # Another key has its own bucket, and so does an anonymous caller (by address).
        assert client.get("/documents", headers={"X-API-Key": STAFF_KEY}).status_code == 200
        assert client.get("/documents").status_code == 200
        # The same key through the other header is the same caller.
        assert client.get("/documents", headers={"Authorization": f"Bearer {HR_KEY}"}).status_code == 429


def test_guessed_keys_are_throttled_by_address(service, identities):
    with TestClient(_limited_app(service, identities, rate_per_s=0.01, burst=3)) as client:
        codes = [client.get("/documents", headers={"X-API-Key": f"guess-{n:020d}"}).status_code for n in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert client.get("/documents", headers={"X-API-Key": HR_KEY}).status_code == 200


def test_the_default_limits_let_normal_use_through(service, identities):
    with TestClient(create_app(service, identities)) as client:
        for _ in range(30):
            assert client.get("/health").status_code == 200
    from cairn.api.limits import ApiLimits

    limits = ApiLimits.from_settings(service.settings.service)
    assert limits.max_body_bytes >= 4 * 1024 * 1024 and limits.burst >= 60 and limits.rate_per_s >= 5


def test_request_ids_are_not_taken_from_the_caller(service, identities):
    forged = "forged\nadmin logged in"
    with TestClient(create_app(service, identities)) as client:
        response = client.get("/health", headers={"X-Request-ID": forged})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_a_body_that_is_not_json_text_says_so(service):
    from fastapi.testclient import TestClient

    from cairn.api.app import create_app
    from retrieval.access import Identities

    with TestClient(create_app(service, Identities.anonymous_only())) as client:
        reply = client.post("/search", content=b"\xff\xfe{not json", headers={"content-type": "application/json"})
    assert reply.status_code in (400, 422)
    assert "JSON" in str(reply.json()["detail"]) and reply.json()["request_id"]

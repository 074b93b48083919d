"""Shared fixtures for the retrieval tests: a small company corpus of real files, indexed by
the real ingestion pipeline into both storage backends, and the real encoders loaded once.

Corpus facts the tests rely on:
- ``hr/salary-bands-2024.md`` is labelled ``["hr"]`` by cairn-acl.yaml; everything else in the
  ``company`` source is public. Its unique phrase is RESTRICTED_PHRASE.
- ``handbook/vacation-policy.md`` and ``archive/vacation-policy-2023.md`` are near-duplicates.
- ``engineering/deploy-guide.md`` has one long section that splits into several chunks.
- The ``finance`` source (a second root) holds ``reports/q3-summary.txt``, modified in 2023.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from retrieval.access import Identity

RESTRICTED_PATH = "hr/salary-bands-2024.md"
RESTRICTED_PHRASE = "Nightingale retention bonus"
OLD_MTIME = datetime(2023, 3, 15, tzinfo=timezone.utc).timestamp()
NEW_MTIME = datetime(2025, 6, 1, tzinfo=timezone.utc).timestamp()

PUBLIC = Identity("anonymous", ("public",))
HR = Identity("hana", ("public", "hr"))
NOBODY = Identity("nobody", ())

_VACATION = """# Vacation policy

## Annual leave

Every full-time employee receives 25 days of paid annual leave per calendar year. Part-time
employees receive leave in proportion to their contracted hours. Leave requests are submitted
in the HR portal at least two weeks in advance and approved by the team lead.

## Carrying over unused days

Up to five unused vacation days can be carried over into the next calendar year. Carried-over
days expire on March 31st; days that are not taken by then are forfeited. Employees who could
not take leave because of a documented business need may ask HR for an exception.

## Public holidays

Public holidays follow the calendar of the office where the employee is based. When a public
holiday falls on a weekend, no replacement day is granted.
"""

_VACATION_2023 = _VACATION.replace("# Vacation policy", "# Vacation policy (2023 edition)").replace(
    "no replacement day is granted.", "no replacement day is granted in 2023."
)

_EXPENSES = """# Travel and expenses

## Booking travel

Book flights and trains through the travel desk. Economy class is the default for flights
shorter than six hours; business class needs approval from a director.

## Meal allowance

The daily meal allowance on business trips is 45 euros within the country and 60 euros
abroad. Alcohol is not reimbursed.

## Receipts

Submit receipts in the expense tool within 30 days of the trip. Photos of paper receipts are
accepted; keep the originals for six months in case of an audit.
"""

_DEPLOY = """# Deployment guide

## Releasing the billing service

The billing service is released from the main branch by the release pipeline. A release starts
when a maintainer pushes a tag that follows semantic versioning, such as v2.14.0. The pipeline
builds the container image, runs the integration tests against a staging database and publishes
the image to the internal registry.

After the image is published, the pipeline deploys it to the staging cluster. Staging runs the
smoke tests for fifteen minutes while the on-call engineer watches the error budget dashboard.
If the error rate stays below one percent, the pipeline asks for a manual approval.

Once approved, the rollout to production proceeds one availability zone at a time. Each zone
receives ten percent of traffic first, then the rest after five minutes without alerts. The
whole rollout usually takes forty minutes.

To roll back a release, run the rollback job with the previous tag. The rollback job restores
the previous image in every zone at once and posts a notice in the incidents channel.

## Feature flags

New behaviour ships behind a feature flag that is off by default. Flags are managed in the
flag service and are removed within two releases after they are fully enabled.
"""

_PYTHON_FAQ = """Why is the global interpreter lock a problem?

The global interpreter lock (GIL) lets only one thread execute Python bytecode at a time. CPU-bound
programs therefore do not speed up with threads; use multiprocessing or native extensions instead.
I/O-bound programs still benefit from threads because the lock is released while waiting.

How do I read a file line by line?

Open the file with a with statement and iterate over the file object: for line in handle. The file
is closed automatically when the block ends, even if an exception is raised.
"""

_ONBOARDING_HTML = """<!DOCTYPE html>
<html><head><title>Onboarding checklist</title></head>
<body>
<h1>Onboarding checklist</h1>
<h2>First day</h2>
<p>Collect your laptop and badge from the IT desk on the ground floor. Your manager schedules an
introduction meeting with the team and assigns an onboarding buddy.</p>
<h2>First week</h2>
<p>Complete the security awareness training and set up two-factor authentication for email,
the code repository and the HR portal.</p>
</body></html>
"""

_SALARY = f"""# Salary bands 2024

## Engineering

The salary band for a Senior Engineer (level L5) is 142,000 to 168,000 euros per year. Staff
engineers (L6) range from 170,000 to 205,000 euros.

Bands are reviewed every April by the compensation committee. Engineers who have stayed below
the midpoint of their band for two years at the same level are prioritised in the review, and
managers may propose an off-cycle adjustment when someone takes on the work of the next level.

## Retention

Key people in the payments team receive the {RESTRICTED_PHRASE} of 20 percent of the annual
salary, paid in two instalments in January and July.
"""

_ACL = """rules:
  - pattern: "hr/**"
    groups: ["hr"]
"""

_Q3 = """Q3 2023 financial summary

Revenue grew 12 percent compared with the second quarter, driven by the subscription business.
Operating costs stayed flat because hiring was paused in August. Cash reserves cover 26 months
of operations at the current burn rate.
"""

COMPANY_FILES = {
    "handbook/vacation-policy.md": _VACATION,
    "archive/vacation-policy-2023.md": _VACATION_2023,
    "handbook/expenses.md": _EXPENSES,
    "engineering/deploy-guide.md": _DEPLOY,
    "engineering/python-faq.txt": _PYTHON_FAQ,
    "handbook/onboarding.html": _ONBOARDING_HTML,
    RESTRICTED_PATH: _SALARY,
    "cairn-acl.yaml": _ACL,
}
FINANCE_FILES = {"reports/q3-summary.txt": _Q3}


def write_corpus(base: Path) -> dict[str, Path]:
    """Writes both sources under ``base``; returns source name -> root folder."""
    roots = {"company": base / "company", "finance": base / "finance"}
    for source, files in (("company", COMPANY_FILES), ("finance", FINANCE_FILES)):
        for rel, text in files.items():
            path = roots[source] / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            mtime = OLD_MTIME if source == "finance" else NEW_MTIME
            os.utime(path, (mtime, mtime))
    return roots


def retrieval_settings(data_dir: Path, **overrides):
    from retrieval.settings import Settings

    # Small chunks, so the few pages above give several chunks per section (neighbours).
    base = dict(data_dir=data_dir, collection="test", chunk_tokens=80, chunk_overlap=16, reranker="none")
    return Settings(**(base | overrides))


@pytest.fixture(scope="session")
def encoders():
    from retrieval.encoders import DenseEncoder, SparseEncoder
    from retrieval.settings import DEFAULT_EMBEDDING_MODEL

    return DenseEncoder(DEFAULT_EMBEDDING_MODEL), SparseEncoder()


MPNET = "sentence-transformers/all-mpnet-base-v2"


@pytest.fixture(scope="session")
def mpnet_reranker():
    """The default embedding reranker (the packaged all-mpnet-base-v2), loaded once."""
    from retrieval.rerank import EmbeddingReranker

    reranker = EmbeddingReranker(MPNET, length_prior=0.04)
    assert reranker.available, reranker.unavailable_reason  # `make setup` installs it
    return reranker


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> dict[str, Path]:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def _open_backend(kind: str, data_dir: Path):
    if kind == "edge":
        from retrieval.store.edge import EdgeStore

        return EdgeStore(data_dir)
    from qdrant_client import QdrantClient

    from retrieval.store.server import ServerStore

    return ServerStore(QdrantClient(":memory:"))


@pytest.fixture(scope="session", params=["edge", "server"])
def indexed(request, tmp_path_factory, encoders, corpus_dir, parser_pool):
    """(settings, store) with the corpus ingested by the real pipeline; one per backend."""
    from ingest.pipeline import IngestPipeline

    data_dir = tmp_path_factory.mktemp(f"index-{request.param}")
    settings = retrieval_settings(data_dir)
    store = _open_backend(request.param, data_dir)
    dense, sparse = encoders
    pipeline = IngestPipeline(settings, store, dense, sparse, parser_pool=parser_pool)
    for source, root in corpus_dir.items():
        report = pipeline.run(root, source=source)
        assert not report.failures, report.failures
    yield settings, store
    store.close()


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, encoders, corpus_dir, parser_pool):
    """An embedded index on disk, closed again so the CLI process can open it."""
    from ingest.pipeline import IngestPipeline
    from retrieval.store.edge import EdgeStore

    data_dir = tmp_path_factory.mktemp("cli-index")
    settings = retrieval_settings(data_dir)
    store = EdgeStore(data_dir)
    pipeline = IngestPipeline(settings, store, *encoders, parser_pool=parser_pool)
    for source, root in corpus_dir.items():
        assert not pipeline.run(root, source=source).failures
    store.close()
    return settings


@pytest.fixture(scope="session")
def service(indexed, encoders):
    from retrieval.rerank import NoReranker
    from retrieval.service import SearchService

    settings, store = indexed
    dense, sparse = encoders
    return SearchService(settings, store, dense, sparse, NoReranker())


# --- a fake Cohere Rerank API (an external service: the only thing faked) ------------------------


class FakeCohereRerank:
    """A local HTTP server answering ``POST /v2/rerank`` like Cohere does.

    Scores are the share of query words found in each document (deterministic).
    ``mode``: ok, 500, malformed, partial (scores fewer documents than it was sent).
    """

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.mode = "ok"
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("authorization")})
                status, payload = server.answer(self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str, body: dict):
        if path != "/v2/rerank":
            return 404, {"message": f"no route {path}"}
        if self.mode == "500":
            return 500, {"message": "internal error"}
        if self.mode == "malformed":
            return 200, b"<html>gateway</html>"
        words = set(body["query"].lower().split())
        scored = [
            {"index": i, "relevance_score": len(words & set(doc.lower().split())) / max(len(words), 1)}
            for i, doc in enumerate(body["documents"])
        ]
        scored.sort(key=lambda r: -r["relevance_score"])
        if self.mode == "partial":
            scored = scored[:1]
        return 200, {"id": "fake", "results": scored[: body.get("top_n") or len(scored)], "meta": {}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def fake_cohere_rerank():
    server = FakeCohereRerank()
    yield server
    server.close()

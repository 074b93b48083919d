"""The ingest API through FastAPI's test client (both backends): a job's life cycle, uploads,
deletes, administrators only; and `cairn ingest` handing its job to a running `cairn serve`
(real processes on loopback)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from fixtures_live import (
    ADMIN_KEY,
    HR_KEY,
    STAFF_KEY,
    wait_for,
    write_policies,
)

from cairn.api.app import create_app
from cairn.api.serving import serving

REPO = Path(__file__).resolve().parent.parent
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture()
def client(live):
    app = create_app(live.search, live.identities, answers=live.answers)
    with serving(app, live, "127.0.0.1", 8000), TestClient(app) as test_client:
        yield test_client


def _finished(client: TestClient, job_id: str, timeout: float = 300) -> dict:
    def check():
        job = client.get(f"/ingest/jobs/{job_id}", headers=ADMIN).json()
        return job if job["state"] in ("done", "failed") else None

    return wait_for(check, timeout, every=0.3, what=f"job {job_id} finishing")


def _paths(client: TestClient, query: str, headers: dict | None = None) -> list[str]:
    response = client.post("/search", json={"query": query, "top_k": 5, "rerank": False}, headers=headers or {})
    assert response.status_code == 200, response.text
    return [hit["path"] for hit in response.json()["hits"]]


def test_a_folder_job_through_its_life_cycle(client, tmp_path):
    docs = tmp_path / "docs" / "policies"
    write_policies(docs, 3)
    queued = client.post("/ingest", json={"folder": str(docs)}, headers=ADMIN)
    assert queued.status_code == 202, queued.text
    job = queued.json()
    assert job["state"] in ("queued", "running") and job["source"] == "policies" and job["kind"] == "folder"
    done = _finished(client, job["id"])
    assert done["state"] == "done" and done["report"]["files"]["added"] == 3 and done["failures"] == []
    assert done["files_done"] == done["files_to_index"] == 3 and done["chunks_written"] > 0
    assert [j["id"] for j in client.get("/ingest/jobs", headers=ADMIN).json()["jobs"]] == [job["id"]]
    assert _paths(client, "rules on the glacier")[0] == "policy-01.md"

    listed = client.get("/ingest/documents", headers=ADMIN).json()["documents"]
    assert {d["path"]: d["groups"] for d in listed} == {f"policy-{i:02}.md": ["public"] for i in range(3)}
    source = client.get("/ingest/sources", headers=ADMIN).json()["sources"]
    assert [(s["name"], s["uploads"]) for s in source] == [("policies", False)]

    doc_id = next(d["doc_id"] for d in listed if d["path"] == "policy-01.md")
    deleted = client.delete(f"/documents/{doc_id}", headers=ADMIN)
    assert deleted.status_code == 200 and deleted.json()["file_removed"] is False  # a folder's file stays
    assert "policy-01.md" not in _paths(client, "rules on the glacier")
    assert client.delete(f"/documents/{doc_id}", headers=ADMIN).status_code == 404

    synced = client.post("/ingest/sync", headers=ADMIN)  # "Sync now": the folder's file is back
    assert synced.status_code == 202
    assert _finished(client, synced.json()["jobs"][0]["id"])["report"]["files"]["added"] == 1


def test_an_upload_goes_to_its_source_folder_under_its_groups(client, tmp_path):
    files = [
        ("files", ("osprey.md", b"# Osprey\n\nThe Osprey programme budget is 4.2 million euros.", "text/markdown")),
        ("files", ("kickoff.txt", b"Osprey kickoff: the steering group meets every month.", "text/plain")),
    ]
    response = client.post("/ingest", data={"source": "hr-inbox", "groups": "hr"}, files=files, headers=ADMIN)
    assert response.status_code == 202, response.text
    done = _finished(client, response.json()["id"])
    assert done["state"] == "done" and done["kind"] == "upload" and done["report"]["files"]["added"] == 2
    assert (tmp_path / "uploads" / "hr-inbox" / "osprey.md").exists()
    assert "osprey.md" in _paths(client, "Osprey programme budget", {"X-API-Key": HR_KEY})
    assert _paths(client, "Osprey programme budget", {"X-API-Key": STAFF_KEY}) == []  # public only
    assert _paths(client, "Osprey programme budget") == []  # anonymous

    doc_id = next(
        d["doc_id"]
        for d in client.get("/ingest/documents", headers=ADMIN).json()["documents"]
        if d["path"] == "osprey.md"
    )
    deleted = client.delete(f"/documents/{doc_id}", headers=ADMIN).json()
    assert deleted["file_removed"] is True and not (tmp_path / "uploads" / "hr-inbox" / "osprey.md").exists()
    assert "osprey.md" not in _paths(client, "Osprey programme budget", {"X-API-Key": HR_KEY})


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": STAFF_KEY}, {"X-API-Key": HR_KEY}], ids=["anonymous", "staff", "hr"]
)
def test_only_administrators_may_ingest_delete_or_see_jobs(client, tmp_path, headers):
    docs = tmp_path / "docs" / "secret"
    write_policies(docs, 1)
    job = client.post("/ingest", json={"folder": str(docs)}, headers=ADMIN).json()
    _finished(client, job["id"])
    doc_id = client.get("/ingest/documents", headers=ADMIN).json()["documents"][0]["doc_id"]
    for method, path, kwargs in [
        ("post", "/ingest", {"json": {"folder": str(docs)}}),
        ("post", "/ingest", {"data": {"source": "x"}, "files": [("files", ("a.md", b"text", "text/markdown"))]}),
        ("get", "/ingest/jobs", {}),
        ("get", f"/ingest/jobs/{job['id']}", {}),
        ("get", "/ingest/jobs/no-such-job", {}),
        ("post", "/ingest/sync", {}),
        ("get", "/ingest/sources", {}),
        ("get", "/ingest/documents", {}),
        ("delete", f"/documents/{doc_id}", {}),
    ]:
        response = getattr(client, method)(path, headers=headers, **kwargs)
        assert response.status_code == 403, (method, path, response.text)
        assert "administrator" in response.json()["detail"]
        assert "policy" not in response.text and str(docs) not in response.text  # nothing about the files
    assert not (tmp_path / "uploads" / "x").exists()
    assert len(client.get("/ingest/jobs", headers=ADMIN).json()["jobs"]) == 1
    bad = client.get("/ingest/jobs", headers={"X-API-Key": "wrong-key-0123456789"})
    assert bad.status_code == 401


def test_refusals_say_what_to_do(client, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for body, status, message in [
        ({"folder": str(outside)}, 403, "CAIRN_INGEST_ROOTS"),
        ({"folder": str(tmp_path / "docs" / ".." / "elsewhere")}, 403, "outside the folders"),
        ({"folder": str(tmp_path / "docs" / "missing")}, 422, "is not a folder"),
        ({"folders": "x"}, 422, "folder"),
    ]:
        response = client.post("/ingest", json=body, headers=ADMIN)
        assert response.status_code == status, response.text
        assert message in json.dumps(response.json()["detail"])
    for data, files, status, message in [
        (
            {"source": "inbox"},
            [("files", ("../../evil.exe", b"x", "application/octet-stream"))],
            422,
            "unsupported file type",
        ),
        ({"source": "../up"}, [("files", ("a.md", b"x", "text/markdown"))], 422, "not a source name"),
        ({}, [("files", ("a.md", b"x", "text/markdown"))], 422, "source"),
        ({"source": "inbox"}, [], 422, "no files"),
    ]:
        response = client.post("/ingest", data=data, files=files or None, headers=ADMIN)
        if not files:  # an empty multipart body needs its content type spelled out
            response = client.post(
                "/ingest",
                content=b'--b\r\nContent-Disposition: form-data; name="source"\r\n\r\ninbox\r\n--b--\r\n',
                headers=ADMIN | {"Content-Type": "multipart/form-data; boundary=b"},
            )
        assert response.status_code == status, response.text
        assert message in response.json()["detail"]
    assert client.get("/ingest/jobs/nope", headers=ADMIN).status_code == 404
    assert client.post("/ingest/sync", json={"source": "nope"}, headers=ADMIN).status_code == 404


def test_an_upload_over_the_file_limit_is_413(live, tmp_path):
    live.ingest_jobs.uploads.max_bytes = 1000
    app = create_app(live.search, live.identities, answers=live.answers)
    with serving(app, live, "127.0.0.1", 8000), TestClient(app) as client:
        files = [("files", ("big.txt", b"x" * 5000, "text/plain"))]
        response = client.post("/ingest", data={"source": "inbox"}, files=files, headers=ADMIN)
    assert response.status_code == 413 and "CAIRN_MAX_FILE_MB" in response.json()["detail"]
    assert [p.name for p in (tmp_path / "uploads" / "inbox").iterdir()] == []  # no half file left


def test_openapi_documents_the_ingest_routes(client):
    spec = client.get("/openapi.json").json()
    ingest = spec["paths"]["/ingest"]["post"]
    assert set(ingest["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert ingest["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/IngestJobStatus")
    assert {"403", "409", "413", "422"} <= set(ingest["responses"])
    for path, method, model in [
        ("/ingest/jobs", "get", "IngestJobsResponse"),
        ("/ingest/jobs/{job_id}", "get", "IngestJobStatus"),
        ("/documents/{doc_id}", "delete", "DeletedDocument"),
        ("/ingest/documents", "get", "IndexedFilesResponse"),
    ]:
        ok = next(v for k, v in spec["paths"][path][method]["responses"].items() if k.startswith("2"))
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith(model)
    assert {"queued", "running", "done", "failed"} == set(spec["components"]["schemas"]["JobState"]["enum"])


# --- `cairn ingest` while `cairn serve` holds the embedded index (real processes) -------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    identities = tmp_path / "identities.yaml"
    identities.write_text(
        f"users:\n  - {{user: ada, api_key: {ADMIN_KEY}, groups: [public], admin: true}}\n"
        f"  - {{user: sam, api_key: {STAFF_KEY}, groups: [public]}}\n"
    )
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CAIRN_", "QDRANT_", "COHERE_"))}
    return (
        keep
        | {
            "CAIRN_DATA_DIR": str(tmp_path / "index"),
            "CAIRN_UPLOAD_DIR": str(tmp_path / "uploads"),
            "CAIRN_COLLECTION": "live",
            "CAIRN_RERANKER": "none",
            "CAIRN_LLM_PROVIDERS": '["extractive"]',
            "CAIRN_IDENTITIES_FILE": str(identities),
            "CAIRN_INGEST_ROOTS": str(tmp_path / "docs"),
        }
        | extra
    )


def _cairn(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cairn", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def test_cairn_ingest_hands_its_job_to_the_running_cairn_serve(tmp_path):
    docs = tmp_path / "docs"
    write_policies(docs / "first", 2)
    write_policies(docs / "second", 2, start=10)
    env = _env(tmp_path)
    assert _cairn(env, "ingest", str(docs / "first"), "--json").returncode == 0  # nobody holds it yet

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "cairn", "serve", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:

        def up():
            assert server.poll() is None, server.stdout.read()
            try:
                return httpx.get(f"{url}/health", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 240, every=1, what="cairn serve answering")
        holder = json.loads((tmp_path / "index" / "serving.json").read_text())
        assert holder["pid"] == server.pid and holder["url"] == url and holder["kind"] == "api"
        search = {"query": "rules on the violin", "top_k": 3, "rerank": False}
        httpx.post(f"{url}/search", json=search, timeout=60)  # the server now has the index open

        handed = _cairn(env | {"CAIRN_API_KEY": ADMIN_KEY}, "ingest", str(docs / "second"), "--json")
        assert handed.returncode == 0, handed.stderr
        report = json.loads(handed.stdout)
        assert report["files"]["added"] == 2 and report["root"] == str(docs / "second")
        hits = httpx.post(f"{url}/search", json=search, timeout=60).json()["hits"]
        assert hits[0]["path"] == "policy-11.md"

        no_key = _cairn(env, "ingest", str(docs / "second"), "--json")
        assert no_key.returncode == 2 and "--api-key" in no_key.stderr and "admin: true" in no_key.stderr
        not_admin = _cairn(env, "ingest", str(docs / "second"), "--api-key", STAFF_KEY)
        assert not_admin.returncode == 2 and "not an administrator" in not_admin.stderr
        outside = tmp_path / "outside"
        write_policies(outside, 1)
        refused = _cairn(env | {"CAIRN_API_KEY": ADMIN_KEY}, "ingest", str(outside))
        assert refused.returncode == 2 and "CAIRN_INGEST_ROOTS" in refused.stderr
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert not (tmp_path / "index" / "serving.json").exists()  # withdrawn on shutdown
    assert _cairn(env, "ingest", str(docs / "second"), "--json").returncode == 0  # back to this process


def test_when_the_chat_page_holds_the_index_the_message_says_what_to_do(tmp_path):
    write_policies(tmp_path / "docs" / "x", 1)
    page = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (tmp_path / "index").mkdir()
        (tmp_path / "index" / "serving.json").write_text(
            json.dumps({"pid": page.pid, "kind": "ui", "url": None, "collection": "live", "started_at": "now"})
        )
        result = _cairn(_env(tmp_path), "ingest", str(tmp_path / "docs" / "x"))
        assert result.returncode == 3
        assert "chat page" in result.stderr and "Add documents" in result.stderr and "cairn serve" in result.stderr
    finally:
        page.kill()
        page.wait()
    # a holder that is gone is no holder
    result = _cairn(_env(tmp_path), "ingest", str(tmp_path / "docs" / "x"), "--json")
    assert result.returncode == 0, result.stderr


def test_ingest_jobs_show_in_the_metrics(client, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    docs = tmp_path / "docs" / "handbook"
    write_policies(docs, 2)
    job = client.post("/ingest", json={"folder": str(docs)}, headers=ADMIN).json()
    assert _finished(client, job["id"])["state"] == "done"
    scrape = client.get("/metrics", headers=ADMIN)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scrape.text)
        for s in family.samples
    }
    assert samples[("cairn_ingest_files_total", (("outcome", "indexed"),))] >= 2
    assert samples[("cairn_ingest_chunks_total", ())] > 0

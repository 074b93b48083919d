"""The HTTP API through FastAPI's test client: auth, errors that name the field, and the ACL
seen from outside, on both backends."""

from __future__ import annotations

import hashlib

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from fixtures_retrieval import RESTRICTED_PATH, RESTRICTED_PHRASE

from cairn.api.app import create_app
from cairn.api.dependencies import current_identity
from retrieval.access import Identities, IdentitiesConfig, Identity, UserEntry
from retrieval.rerank import NoReranker
from retrieval.service import SearchService

HR_KEY = "hr-key-0123456789abcdef"
STAFF_KEY = "staff-key-0123456789abcdef"


@pytest.fixture(scope="module")
def identities():
    return Identities(
        IdentitiesConfig(
            anonymous_groups=["public"],
            users=[
                UserEntry(user="hana", api_key=HR_KEY, groups=["public", "hr"]),
                UserEntry(user="sam", api_key_sha256=hashlib.sha256(STAFF_KEY.encode()).hexdigest(), groups=["public"]),
            ],
        )
    )


@pytest.fixture()
def client(service, identities):
    whoami = APIRouter()

    @whoami.get("/whoami")
    def _whoami(identity: Identity = Depends(current_identity)) -> dict:
        return {"user": identity.user, "groups": list(identity.groups)}

    with TestClient(create_app(service, identities, routers=[whoami])) as test_client:
        yield test_client


def _paths(response) -> set[str]:
    return {h["path"] for h in response.json()["hits"]}


def test_search_anonymous_and_with_keys(client):
    body = {"query": RESTRICTED_PHRASE, "top_k": 20, "rerank": False}
    anonymous = client.post("/search", json=body)
    assert anonymous.status_code == 200 and RESTRICTED_PATH not in _paths(anonymous)
    bearer = client.post("/search", json=body, headers={"Authorization": f"Bearer {HR_KEY}"})
    assert bearer.status_code == 200 and RESTRICTED_PATH in _paths(bearer)
    x_key = client.post("/search", json=body, headers={"X-API-Key": HR_KEY})
    assert RESTRICTED_PATH in _paths(x_key)
    staff = client.post("/search", json=body, headers={"X-API-Key": STAFF_KEY})
    assert staff.status_code == 200 and RESTRICTED_PATH not in _paths(staff)
    hit = bearer.json()["hits"][0]
    assert set(hit["scores"]) == {"dense", "sparse", "fused", "rerank"}
    assert set(bearer.json()["timings_ms"]) == {"encode", "search", "rerank", "assemble", "total"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"X-API-Key": "wrong-key-0123456789"},
        {"Authorization": f"Basic {HR_KEY}"},
        {"Authorization": "Bearer "},
    ],
)
def test_bad_keys_get_401_on_every_route(client, headers):
    for method, path, body in (
        ("post", "/search", {"query": "x"}),
        ("post", "/context", {"query": "x"}),
        ("get", "/health", None),
        ("get", "/documents", None),
        ("get", "/whoami", None),
    ):
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.headers["www-authenticate"] == "Bearer"
        assert HR_KEY not in response.text


def test_a_key_is_required_when_anonymous_access_is_off(service):
    identities = Identities(
        IdentitiesConfig(anonymous_groups=[], users=[UserEntry(user="hana", api_key=HR_KEY, groups=["hr"])])
    )
    with TestClient(create_app(service, identities)) as client:
        refused = client.post("/search", json={"query": "vacation"})
        assert refused.status_code == 401 and "API key is required" in refused.json()["detail"]
        assert client.post("/search", json={"query": "vacation"}, headers={"X-API-Key": HR_KEY}).status_code == 200


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "x", "top_k": 0}, "top_k"),
        ({"query": "x", "fusion": "max"}, "fusion"),
        ({"query": "x", "mode": "keyword"}, "mode"),
        ({"query": "x", "filters": {"groups": ["hr"]}}, "groups"),
        ({"query": "x", "groups": ["hr"]}, "groups"),
        ({"query": "x", "filters": {"modified_after": "yesterday"}}, "modified_after"),
        (
            {"query": "x", "filters": {"modified_after": "2025-01-01", "modified_before": "2024-01-01"}},
            "modified_after",
        ),
    ],
)
def test_bad_bodies_get_422_naming_the_field(client, body, field):
    response = client.post("/search", json=body)
    assert response.status_code == 422
    assert field in response.text


def test_context_budget_field_is_validated(client):
    response = client.post("/context", json={"query": "vacation", "token_budget": 0})
    assert response.status_code == 422 and "token_budget" in response.text


def test_context_over_http(client):
    response = client.post("/context", json={"query": "carry over vacation days", "token_budget": 120, "rerank": False})
    assert response.status_code == 200
    data = response.json()
    assert 0 < data["tokens_used"] <= 120
    assert [b["n"] for b in data["blocks"]] == list(range(1, len(data["blocks"]) + 1))
    assert all(b["chunk_ids"] for b in data["blocks"])
    restricted = client.post("/context", json={"query": RESTRICTED_PHRASE, "top_k": 50, "rerank": False})
    assert RESTRICTED_PHRASE not in " ".join(b["text"] for b in restricted.json()["blocks"])
    assert RESTRICTED_PATH not in restricted.text


def test_health_and_documents_are_filtered_by_caller(client):
    anonymous = client.get("/health").json()
    hr = client.get("/health", headers={"X-API-Key": HR_KEY}).json()
    assert anonymous["status"] == "ok" and anonymous["index_reachable"]
    assert anonymous["models"]["dense"] and anonymous["reranker"]["reranker"] == "none"
    assert hr["documents"] == anonymous["documents"] + 1 and hr["chunks"] > anonymous["chunks"]
    documents = client.get("/documents").json()["documents"]
    assert len(documents) == anonymous["documents"]
    assert RESTRICTED_PATH not in {d["path"] for d in documents}
    assert RESTRICTED_PATH in {
        d["path"] for d in client.get("/documents", headers={"X-API-Key": HR_KEY}).json()["documents"]
    }


def test_extra_routers_get_the_callers_identity(client):
    assert client.get("/whoami").json() == {"user": "anonymous", "groups": ["public"]}
    assert client.get("/whoami", headers={"Authorization": f"Bearer {HR_KEY}"}).json()["user"] == "hana"


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/search", "/context", "/health", "/documents", "/whoami"} <= set(spec["paths"])


def test_missing_index_is_503_with_what_to_do(service, identities):
    settings = service.settings.model_copy(update={"collection": "never-ingested"})
    broken = SearchService(settings, service.store, service.dense, service.sparse, NoReranker())
    with TestClient(create_app(broken, identities)) as client:
        search = client.post("/search", json={"query": "vacation"})
        assert search.status_code == 503 and "cairn ingest" in search.json()["detail"]
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded" and not health.json()["index_reachable"]
        assert client.get("/documents").json() == {"documents": []}

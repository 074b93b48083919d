"""A Qdrant server lost mid-request (a fake endpoint that cuts connections, since no server
binary runs here): the API answers 503 with what to do and a request id, never a 500, the
service stays up, and answers again once the server is back."""

from __future__ import annotations

from fastapi.testclient import TestClient

from cairn.api.app import create_app
from cairn.api.limits import ApiLimits
from retrieval.access import Identities
from retrieval.rerank import NoReranker
from retrieval.service import SearchService
from retrieval.settings import Settings
from retrieval.store.server import ServerStore


def test_a_server_lost_mid_request_is_a_503_and_the_service_recovers(fake_qdrant, encoders):
    settings = Settings(_env_file=None, qdrant_url=fake_qdrant.url, collection="docs", reranker="none")
    store = ServerStore.connect(fake_qdrant.url)
    store.create_chunk_collection("docs", encoders[0].dimension)
    service = SearchService(settings, store, *encoders, NoReranker())
    app = create_app(service, Identities.anonymous_only(), limits=ApiLimits(rate_per_s=0))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/search", json={"query": "vacation days"}).status_code == 200  # up: an empty index
        fake_qdrant.dropping = {"/points/query/batch", "/points/count"}
        lost = client.post("/search", json={"query": "vacation days"})
        assert lost.status_code == 503, lost.text
        assert "try again" in lost.json()["detail"] and lost.json()["request_id"] == lost.headers["x-request-id"]
        assert fake_qdrant.url not in lost.text  # the server's address stays in the log
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["index_reachable"] is False  # degraded, not dead
        fake_qdrant.dropping = set()
        assert client.post("/search", json={"query": "vacation days"}).status_code == 200  # back

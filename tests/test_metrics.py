"""`GET /metrics` and the request log: counters and histograms move after real requests, the
scrape parses as Prometheus text, only an administrator may read it when keys are configured,
and each request's log line carries its request id and no document text, question or key."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from fixtures_answer import answer_settings
from prometheus_client.parser import text_string_to_metric_families

from answers.service import AnswerService
from cairn.api.app import create_app
from cairn.api.limits import ApiLimits
from retrieval.access import Identities, IdentitiesConfig, UserEntry

ADMIN_KEY = "admin-key-0123456789abcdef"
STAFF_KEY = "staff-key-0123456789abcdef"
QUESTION = "How many vacation days can be carried over?"


@pytest.fixture()
def client(service):
    identities = Identities(
        IdentitiesConfig(
            anonymous_groups=["public"],
            users=[
                UserEntry(user="ada", api_key=ADMIN_KEY, groups=["public"], admin=True),
                UserEntry(user="sam", api_key=STAFF_KEY, groups=["public"]),
            ],
        )
    )
    answers = AnswerService(service, answer_settings(llm_providers=["extractive"]).answers)
    app = create_app(service, identities, answers=answers, limits=ApiLimits(rate_per_s=0))
    with TestClient(app) as test_client:
        yield test_client


def scrape(client) -> dict[tuple[str, tuple], float]:
    reply = client.get("/metrics", headers={"X-API-Key": ADMIN_KEY})
    assert reply.status_code == 200, reply.text
    samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_and_histograms_move_after_requests(client):
    before = scrape(client)
    assert client.post("/search", json={"query": QUESTION}, headers={"X-API-Key": STAFF_KEY}).status_code == 200
    assert client.post("/answer", json={"question": QUESTION}, headers={"X-API-Key": STAFF_KEY}).status_code == 200
    after = scrape(client)
    for name, labels in [
        ("cairn_requests_total", {"route": "/search", "status": "200"}),
        ("cairn_requests_total", {"route": "/answer", "status": "200"}),
        ("cairn_request_seconds_count", {"route": "/search"}),
        ("cairn_stage_seconds_count", {"stage": "encode"}),
        ("cairn_stage_seconds_count", {"stage": "retrieval"}),
        ("cairn_stage_seconds_count", {"stage": "answer_total"}),
        ("cairn_answers_total", {"provider": "extractive"}),
    ]:
        assert value(after, name, **labels) == value(before, name, **labels) + (2 if labels.get("stage") == "encode" else 1), (name, labels)
    assert value(after, "cairn_index_chunks") > 0 and value(after, "cairn_index_documents") > 0


def test_only_an_administrator_reads_metrics(client):
    assert client.get("/metrics", headers={"X-API-Key": STAFF_KEY}).status_code == 403
    assert client.get("/metrics").status_code == 403  # anonymous
    assert client.get("/metrics", headers={"X-API-Key": ADMIN_KEY}).status_code == 200


def test_the_request_log_carries_the_id_and_no_text(client, caplog):
    with caplog.at_level(logging.INFO, logger="cairn.requests"):
        reply = client.post("/answer", json={"question": QUESTION}, headers={"X-API-Key": STAFF_KEY})
    response = reply.json()
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "cairn.requests"]
    (line,) = [entry for entry in lines if entry["request_id"] == reply.headers["x-request-id"]]
    assert line["user"] == "sam" and line["route"] == "/answer" and line["provider"] == "extractive"
    assert line["retrieved"] and set(line["cited"]) <= set(line["retrieved"])
    assert "total_ms" in line["timings_ms"]
    raw = json.dumps(line)
    assert STAFF_KEY not in raw and QUESTION not in raw
    for block in response["context"]:
        assert block["text"][:40] not in raw

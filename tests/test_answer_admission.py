"""Admission control for answers: past the answers in flight the service admits, a request is
refused at once with 503 and Retry-After (never left to time out behind the others), while
searches and /health keep answering; a finished answer gives its slot back."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from fixtures_answer import answer_settings

from answers.service import AnswerService
from cairn.api.app import create_app
from cairn.api.limits import ApiLimits
from retrieval.access import Identities

QUESTION = {"question": "How many vacation days can be carried over?", "cache": "bypass", "rerank": False}


def test_a_request_past_the_admitted_answers_is_refused_at_once(service, fake_openai):
    fake_openai.piece_delay_s = 1.0  # a model writing slowly: the first answer holds its slot for seconds
    settings = answer_settings(llm_providers=["openai", "extractive"], openai_base_url=fake_openai.url, llm_timeout_s=30.0)
    answers = AnswerService(service, settings.answers)
    app = create_app(service, Identities.anonymous_only(), answers=answers, limits=ApiLimits(rate_per_s=0, max_answers=1, answer_retry_after_s=7))
    with TestClient(app) as client:
        first: dict = {}
        writer = threading.Thread(target=lambda: first.update(reply=client.post("/answer", json=QUESTION)))
        writer.start()
        deadline = time.monotonic() + 30
        while not fake_openai.requests and time.monotonic() < deadline:
            time.sleep(0.05)  # the first answer is being written
        started = time.monotonic()
        refused = client.post("/answer", json=QUESTION)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "7"
        assert time.monotonic() - started < 5  # at once, not after the first answer
        assert "ask again" in refused.json()["detail"] and refused.json()["request_id"]
        assert client.post("/search", json={"query": "vacation days"}).status_code == 200  # searches go on
        assert client.get("/health").status_code == 200
        writer.join(timeout=60)
        assert first["reply"].status_code == 200 and first["reply"].json()["provider"] == "openai"
        assert client.post("/answer", json=QUESTION).status_code == 200  # the slot came back

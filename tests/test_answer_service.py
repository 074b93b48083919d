"""Answers over a real index: retrieval under the caller's access groups, follow-up rewriting,
citations that point at real chunks, and `POST /answer` as JSON and as SSE."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from fixtures_answer import answer_settings
from fixtures_retrieval import HR, PUBLIC, RESTRICTED_PATH, RESTRICTED_PHRASE

from answers.schemas import AnswerRequest, AnswerResponse, ChatTurn, ContextEvent, FinalEvent
from answers.service import AnswerService
from cairn.api.app import create_app
from retrieval.access import Identities, IdentitiesConfig, UserEntry

HR_KEY = "hr-key-0123456789abcdef"


@pytest.fixture(scope="module")
def answers(answer_search):
    return AnswerService(answer_search, answer_settings(llm_providers=["extractive"]))


def test_answer_cites_the_document_that_holds_it(answers):
    response = answers.answer(AnswerRequest(question="How many days of paid annual leave does an employee get?"), PUBLIC)
    assert response.provider == "extractive" and response.extractive
    assert response.context, "retrieval found nothing"
    assert response.citations
    cited = response.citations[0]
    assert cited.path.endswith("vacation-policy.md")
    assert "25 days" in cited.snippet
    block = next(b for b in response.context if b.n == cited.n)
    assert cited.chunk_ids == block.chunk_ids and cited.chunk_ids
    assert response.invalid_citations == 0
    assert response.rewritten_query is None
    assert {"retrieval_ms", "generation_ms", "total_ms"} <= set(response.timings_ms)


def test_restricted_documents_never_reach_the_prompt_of_an_outsider(answers):
    question = f"What is the {RESTRICTED_PHRASE}?"
    outsider = answers.answer(AnswerRequest(question=question), PUBLIC)
    assert all(b.path != RESTRICTED_PATH for b in outsider.context)
    assert RESTRICTED_PHRASE not in outsider.answer
    insider = answers.answer(AnswerRequest(question=question), HR)
    assert any(c.path == RESTRICTED_PATH for c in insider.citations)


def test_follow_up_is_rewritten_with_the_previous_question_terms(answers):
    history = [
        ChatTurn(role="user", content="How many unused vacation days can be carried over?"),
        ChatTurn(role="assistant", content="Up to five days [1]."),
    ]
    events = list(answers.stream(AnswerRequest(question="When do they expire?", history=history), PUBLIC))
    assert isinstance(events[0], ContextEvent)
    response = events[-1].response
    assert response.question == "When do they expire?"  # the answer keeps the original wording
    assert response.rewritten_by == "plain"  # no LLM in this chain
    assert "vacation" in response.rewritten_query and "expire" in response.rewritten_query
    assert events[0].rewritten_query == response.rewritten_query
    assert any("March 31st" in c.snippet for c in response.citations)
    assert "rewrite_ms" in response.timings_ms


# --- HTTP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(answer_search, answers):
    identities = Identities(
        IdentitiesConfig(
            anonymous_groups=["public"],
            users=[UserEntry(user="hana", api_key=HR_KEY, groups=["public", "hr"])],
        )
    )
    app = create_app(answer_search, identities)
    app.state.answers = answers  # the extractive chain: no model load in API tests
    return TestClient(app)


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for frame in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_post_answer_returns_json(client):
    reply = client.post("/answer", json={"question": "What is the daily meal allowance abroad?"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/json")
    response = AnswerResponse.model_validate(reply.json())
    assert any(c.path == "handbook/expenses.md" for c in response.citations)


def test_post_answer_streams_sse_when_asked_in_the_body(client):
    reply = client.post(
        "/answer", json={"question": "What is the daily meal allowance abroad?", "stream": True}
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = _sse_events(reply.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "context" and kinds[-1] == "final" and "token" in kinds
    tokens = "".join(data["text"] for kind, data in events if kind == "token")
    final = AnswerResponse.model_validate(events[-1][1]["response"])
    assert tokens == final.answer  # nothing was removed: every citation was valid
    assert final.citations


def test_post_answer_streams_sse_for_an_accept_header(client):
    reply = client.post(
        "/answer",
        json={"question": "What is the daily meal allowance abroad?"},
        headers={"Accept": "text/event-stream"},
    )
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert _sse_events(reply.text)[-1][0] == "final"


def test_post_answer_applies_the_same_access_rules_as_search(client):
    question = {"question": f"What is the {RESTRICTED_PHRASE}?"}
    anonymous = client.post("/answer", json=question).json()
    assert all(b["path"] != RESTRICTED_PATH for b in anonymous["context"])
    hana = client.post("/answer", json=question, headers={"X-API-Key": HR_KEY}).json()
    assert any(c["path"] == RESTRICTED_PATH for c in hana["citations"])
    refused = client.post("/answer", json=question, headers={"X-API-Key": "wrong-key"})
    assert refused.status_code == 401


def test_post_answer_rejects_unknown_providers_and_bad_bodies(client):
    reply = client.post("/answer", json={"question": "Leave?", "provider": "gpt5"})
    assert reply.status_code == 422 and "choose from" in reply.json()["detail"]
    assert client.post("/answer", json={"question": ""}).status_code == 422
    assert client.post("/answer", json={"question": "x", "bogus": 1}).status_code == 422


def test_final_event_is_last_in_the_python_stream(answers):
    events = list(answers.stream(AnswerRequest(question="What is the meal allowance?"), PUBLIC))
    assert isinstance(events[-1], FinalEvent)
    assert sum(isinstance(e, FinalEvent) for e in events) == 1

"""A question asked mid-conversation (issue 17: the chat's answers after the first one waited for a
rewrite and read the earlier turns). One that stands alone is neither rewritten nor given the
conversation, and may come from the answer cache; a follow-up the model rewrote is answered as
rewritten, without the earlier turns in its prompt. The model is a fake OpenAI-compatible
server, so what the service sent it can be read."""

from __future__ import annotations

import pytest
from fixtures_answer import answer_settings
from fixtures_retrieval import PUBLIC

from answers.rewrite import is_follow_up, stands_alone
from answers.schemas import AnswerRequest, ChatTurn
from answers.service import AnswerService

HISTORY = [
    ChatTurn(role="user", content="How many unused vacation days can be carried over?"),
    ChatTurn(role="assistant", content="Up to five days [1]. The earlier turn's own words: expense reports."),
]

# Written for this test, about the sample corpus: each leans on what was asked before.
FOLLOW_UPS = [
    "When do they expire?",
    "And in France?",
    "What about contractors?",
    "Why?",
    "Who approves it?",
    "Which one is cheaper?",
    "Tell me more about the second one",
    "Does the same apply to part-time staff?",
    "Is that also true for interns?",
    "How long do I have to file those?",
    "What is the limit there?",
    "But who signs off on them?",
    "In Germany?",
    "So what should I do next?",
]
STANDALONE = [
    "What is the per diem for a full travel day in Germany?",
    "How do I report a lost laptop?",
    "How many vacation days can be carried over?",
    "Is there a dress code?",
    "Who approves travel over budget?",
    "What is the maximum payload of the NR-7?",
    "How quickly must I report a suspected security incident, and to whom?",
]


@pytest.mark.parametrize("question", FOLLOW_UPS)
def test_a_question_leaning_on_the_conversation_is_a_follow_up(question):
    assert not stands_alone(question)
    assert is_follow_up(question, HISTORY)
    assert not is_follow_up(question, [])  # with nothing before it, there is nothing to lean on


@pytest.mark.parametrize("question", STANDALONE)
def test_a_complete_question_stands_alone(question):
    assert stands_alone(question)
    assert not is_follow_up(question, HISTORY)


@pytest.fixture()
def model_answers(answer_search, fake_openai):
    fake_openai.mode = "ok"
    settings = answer_settings(
        llm_providers=["openai", "extractive"],
        openai_base_url=fake_openai.url,
        llm_attribute_uncited=False,
        answer_cache_enabled=False,
    )
    return AnswerService(answer_search, settings), fake_openai


def _prompt_text(request: dict) -> str:
    return "\n".join(m["content"] for m in request["body"]["messages"])


def test_a_question_that_stands_alone_mid_conversation_is_answered_without_it(model_answers):
    answers, model = model_answers
    model.reply = ["Up to five days can be carried over [1]."]
    question = "How many vacation days can be carried over?"
    response = answers.answer(AnswerRequest(question=question, history=HISTORY), PUBLIC)

    assert response.rewritten_query is None and "rewrite_ms" not in response.timings_ms
    assert len(model.requests) == 1  # the answer only: no rewrite was asked for
    messages = model.requests[0]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]  # no earlier turn
    assert "expense reports" not in _prompt_text(model.requests[0])
    assert messages[-1]["content"].endswith(question)


def test_a_follow_up_the_model_rewrote_is_answered_as_rewritten_without_the_conversation(model_answers):
    answers, model = model_answers
    rewritten = "When do unused vacation days expire?"
    model.reply = [rewritten]  # what the fake says to both requests: the rewrite, then the answer
    response = answers.answer(AnswerRequest(question="When do they expire?", history=HISTORY), PUBLIC)

    assert response.rewritten_query == rewritten and response.rewritten_by == "openai"
    assert response.question == "When do they expire?"  # the response keeps the user's wording
    rewrite, answer = model.requests
    assert "expense reports" in _prompt_text(rewrite)  # the rewrite reads the conversation
    messages = answer["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "expense reports" not in _prompt_text(answer)
    assert messages[-1]["content"].endswith(rewritten)


def test_a_plain_rewrite_keeps_the_conversation_in_the_prompt(answer_search, fake_openai):
    # No LLM rewrite (turned off): the key terms put in front read worse than the turns.
    settings = answer_settings(
        llm_providers=["openai", "extractive"],
        openai_base_url=fake_openai.url,
        llm_rewrite_followups=False,
        answer_cache_enabled=False,
    )
    answers = AnswerService(answer_search, settings)
    response = answers.answer(AnswerRequest(question="When do they expire?", history=HISTORY), PUBLIC)

    assert response.rewritten_by == "plain"
    (answer,) = fake_openai.requests
    assert [m["role"] for m in answer["body"]["messages"]] == ["system", "user", "assistant", "user"]
    assert answer["body"]["messages"][-1]["content"].endswith("When do they expire?")

"""The fallback chain against fake Cohere and OpenAI-compatible servers on 127.0.0.1: success,
5xx, timeout, malformed output and a mid-answer failure each lead to the right next provider,
with the reason reported."""

from __future__ import annotations

import pytest
from fixtures_answer import LEAVE_BLOCKS, answer_settings

from answers.providers.extractive import LABEL
from answers.schemas import FinalEvent, ResetEvent, TokenEvent
from answers.service import AnswerService, final_response

QUESTION = "How many days of annual leave do employees get?"


def _service(openai=None, cohere=None, chain=("openai", "cohere", "extractive"), **overrides):
    settings = answer_settings(
        llm_providers=list(chain),
        openai_base_url=openai.url if openai else None,
        cohere_api_key="test-key" if cohere else None,
        cohere_base_url=cohere.url if cohere else None,
        llm_timeout_s=overrides.pop("llm_timeout_s", 5.0),
        **overrides,
    )
    return AnswerService(None, settings)


def _answer(service, provider=None):
    events = list(service.stream_from_context(QUESTION, LEAVE_BLOCKS, provider=provider))
    return events, final_response(iter(events))


def test_openai_compatible_answers_with_resolved_citations(fake_openai):
    events, response = _answer(_service(openai=fake_openai))
    assert response.provider == "openai" and not response.extractive
    assert response.fallbacks == []
    assert response.answer == "Employees get 25 days of annual leave [1]."
    assert [c.path for c in response.citations] == ["policies/leave-policy.pdf"]
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert tokens == fake_openai.reply  # streamed piece by piece
    sent = fake_openai.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["body"]["stream"] is True
    assert sent["body"]["messages"][0]["role"] == "system"
    assert '<document n="1"' in sent["body"]["messages"][-1]["content"]


@pytest.mark.parametrize("attribute", [True, False])
def test_an_answer_without_marks_is_attributed_to_the_block_that_holds_it(fake_openai, attribute):
    fake_openai.reply = ["Every full-time employee receives ", "25 days of paid annual leave per year."]
    _, response = _answer(_service(openai=fake_openai, llm_attribute_uncited=attribute))
    if attribute:
        assert response.answer == "Every full-time employee receives 25 days of paid annual leave per year [1]."
        assert [(c.path, c.attributed) for c in response.citations] == [("policies/leave-policy.pdf", True)]
    else:
        assert response.answer == "Every full-time employee receives 25 days of paid annual leave per year."
        assert response.citations == []


def test_cohere_answers_when_openai_returns_500(fake_openai, fake_cohere):
    fake_openai.mode = "500"
    _, response = _answer(_service(openai=fake_openai, cohere=fake_cohere))
    assert response.provider == "cohere"
    assert response.answer == "Employees get 25 days of annual leave [1]."
    assert len(response.fallbacks) == 1
    assert response.fallbacks[0].provider == "openai"
    assert "HTTP 500" in response.fallbacks[0].error
    assert fake_cohere.requests[0]["path"] == "/v1/chat"
    assert len(fake_openai.requests) == 1  # no retries: the chain is the retry


def test_openai_timeout_falls_back(fake_openai, fake_cohere):
    fake_openai.mode = "slow"
    fake_openai.delay_s = 3.0
    _, response = _answer(_service(openai=fake_openai, cohere=fake_cohere, llm_timeout_s=1.0))
    assert response.provider == "cohere"
    assert response.fallbacks[0].provider == "openai"
    assert "timed out" in response.fallbacks[0].error.lower() or "no output for" in (
        response.fallbacks[0].error
    )


def test_openai_malformed_stream_falls_back(fake_openai, fake_cohere):
    fake_openai.mode = "malformed"
    _, response = _answer(_service(openai=fake_openai, cohere=fake_cohere))
    assert response.provider == "cohere"
    assert response.fallbacks[0].provider == "openai"
    assert "JSONDecodeError" in response.fallbacks[0].error


def test_cohere_500_falls_back_to_extractive(fake_cohere):
    fake_cohere.mode = "500"
    _, response = _answer(_service(cohere=fake_cohere, chain=("cohere", "extractive")))
    assert response.provider == "extractive" and response.extractive
    assert response.answer.startswith(LABEL)
    assert response.citations and response.citations[0].n == 1
    assert response.fallbacks[0].provider == "cohere"
    assert "HTTP 500" in response.fallbacks[0].error
    assert len(fake_cohere.requests) == 1


def test_cohere_timeout_falls_back(fake_cohere):
    fake_cohere.mode = "slow"
    fake_cohere.delay_s = 3.0
    service = _service(cohere=fake_cohere, chain=("cohere", "extractive"), llm_timeout_s=1.0)
    _, response = _answer(service)
    assert response.provider == "extractive"
    error = response.fallbacks[0].error.lower()
    assert "timed out" in error or "timeout" in error or "no output for" in error


def test_cohere_malformed_output_is_empty_and_falls_back(fake_cohere):
    fake_cohere.mode = "malformed"
    _, response = _answer(_service(cohere=fake_cohere, chain=("cohere", "extractive")))
    assert response.provider == "extractive"
    assert response.fallbacks[0].provider == "cohere"
    assert response.fallbacks[0].error == "empty output"


@pytest.mark.parametrize("api", ["openai", "cohere"])
def test_failure_mid_answer_resets_the_stream(api, fake_openai, fake_cohere):
    failing = fake_openai if api == "openai" else fake_cohere
    failing.mode = "midstream"
    chain = (api, "extractive")
    events, response = _answer(_service(openai=fake_openai, cohere=fake_cohere, chain=chain))
    kinds = [e.type for e in events]
    reset = kinds.index("reset")
    assert kinds[reset - 1] == "token" and events[reset - 1].provider == api  # tokens were sent
    assert isinstance(events[reset], ResetEvent) and events[reset].provider == api
    assert all(e.provider == "extractive" for e in events[reset + 1 :] if e.type == "token")
    assert isinstance(events[-1], FinalEvent)
    assert response.provider == "extractive"
    assert "Employees get 25 days" not in response.answer  # the failed provider's text is gone
    assert response.fallbacks[0].provider == api


def test_unconfigured_providers_are_skipped_with_what_to_set():
    _, response = _answer(_service())
    assert response.provider == "extractive"
    reasons = {f.provider: f.error for f in response.fallbacks}
    assert "CAIRN_OPENAI_BASE_URL is not set" in reasons["openai"]
    assert "COHERE_API_KEY is not set" in reasons["cohere"]


def test_extractive_always_ends_the_chain(fake_openai):
    fake_openai.mode = "500"
    service = _service(openai=fake_openai, chain=("openai",))
    assert service.chain().names == ["openai", "extractive"]
    _, response = _answer(service)
    assert response.provider == "extractive"


def test_a_chosen_provider_answers_first_backed_by_extractive_only(fake_openai, fake_cohere):
    service = _service(openai=fake_openai, cohere=fake_cohere)
    assert service.chain("cohere").names == ["cohere", "extractive"]
    _, response = _answer(service, provider="cohere")
    assert response.provider == "cohere"
    assert fake_openai.requests == []


def test_unknown_provider_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="choose from local, cohere, openai, extractive"):
        _service().chain("gpt5")
    with pytest.raises(ValueError, match="unknown answer provider 'nope'"):
        _service(chain=("nope",))


def test_an_answer_its_citations_do_not_support_falls_back(fake_openai):
    fake_openai.reply = ["The boiling point of mercury ", "is 357.8°C [3]."]
    _, response = _answer(_service(openai=fake_openai, chain=("openai", "extractive")))
    assert response.provider == "extractive"
    assert response.fallbacks[0].error.startswith("unsupported answer: the cited documents [3]")
    assert "357" not in response.answer


def test_a_provider_error_body_reaches_the_log_not_the_caller(fake_openai, caplog):
    """What a provider says about itself (here "the model crashed"; elsewhere hosts or echoed
    keys) is logged for the operator; the caller sees the status and the kind of error."""
    fake_openai.mode = "500"
    with caplog.at_level("WARNING", logger="cairn.answers"):
        _, response = _answer(_service(openai=fake_openai, chain=("openai", "extractive")))
    (failure,) = response.fallbacks
    assert failure.error.startswith("HTTP 500") and "the model crashed" not in failure.error
    assert any("the model crashed" in r.getMessage() for r in caplog.records)

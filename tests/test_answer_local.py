"""The local provider for real: SmolLM2-135M (packaged, fast, writes nonsense) for plumbing,
streaming and citation checks; Qwen2.5-Coder-1.5B (assembled by `make setup`) for behaviour."""

from __future__ import annotations

import re

import pytest
from fixtures_answer import INJECTION, LEAVE_BLOCKS, answer_settings, block
from fixtures_retrieval import PUBLIC

from answers.providers.local import LlamaCppLLM, LocalProvider
from answers.schemas import AnswerRequest, ChatTurn, ContextEvent, TokenEvent
from answers.service import AnswerService, final_response
from retrieval.search_schemas import SearchRequest

QUESTION = "How many days of annual leave does a full-time employee get?"


def _answer(settings, question=QUESTION, blocks=LEAVE_BLOCKS, **kwargs):
    events = list(AnswerService(None, settings).stream_from_context(question, blocks, **kwargs))
    return events, final_response(iter(events))


def _marks(text: str) -> set[int]:
    groups = re.findall(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]", text)
    return {int(n) for group in groups for n in re.findall(r"\d+", group)}


# --- SmolLM2: plumbing ---------------------------------------------------------------------------


def test_local_model_streams_tokens_and_answers(smollm2_settings):
    events, response = _answer(smollm2_settings)
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert len(tokens) > 3 and all(t.provider == "local" for t in tokens)  # streamed, not at once
    assert response.provider == "local" and not response.extractive
    assert response.fallbacks == []
    assert response.answer.strip()
    # whatever the small model wrote, every mark left in the answer points at a block sent
    assert _marks(response.answer) <= {b.n for b in LEAVE_BLOCKS}
    assert _marks(response.answer) <= {c.n for c in response.citations}
    assert response.timings_ms["first_token_ms"] <= response.timings_ms["total_ms"]


def test_llama_cpp_llm_speaks_llama_index(smollm2_settings):
    provider = LocalProvider(smollm2_settings)
    llm = provider.llm
    assert isinstance(llm, LlamaCppLLM) and llm.metadata.is_chat_model
    completion = llm.complete("The capital of France is", max_tokens=8)
    assert completion.text.strip()


def test_context_budget_is_counted_in_the_answer_models_tokens(smollm2_settings, answer_search):
    service = AnswerService(answer_search, smollm2_settings)
    counter = service.provider("local").token_counter()
    text = "Größe naïve café: übermäßig long-winded résumé"
    assert counter.count(text) != answer_search.token_counter.count(text)  # not the dense model's tokenizer

    events = service.stream(AnswerRequest(question=QUESTION, rerank=False), PUBLIC)
    first = next(events)
    events.close()  # the budget is settled before generation starts
    assert isinstance(first, ContextEvent) and first.context
    sent = first.retrieval
    assert sent.tokens_used == sum(b.tokens for b in sent.blocks) <= sent.token_budget
    by_dense_tokenizer = answer_search.context(SearchRequest(query=QUESTION, rerank=False), PUBLIC)
    same_block = by_dense_tokenizer.blocks[0]
    assert same_block.chunk_ids == sent.blocks[0].chunk_ids
    assert same_block.tokens != sent.blocks[0].tokens  # the same text, counted by the other tokenizer


def test_silent_local_model_times_out_and_recovers(smollm2_settings):
    hurried = smollm2_settings.model_copy(update={"llm_timeout_s": 0.001})
    _, response = _answer(hurried)
    assert response.provider == "extractive"
    assert response.fallbacks[0].provider == "local"
    assert "no output for 0.001 s" in response.fallbacks[0].error
    # the abandoned generation stops and frees the model for the next question: it writes again
    # (whether SmolLM2's nonsense then passes the citation check is not what this tests)
    events, again = _answer(smollm2_settings)
    assert any(e.type == "token" and e.provider == "local" for e in events)
    assert again.provider == "local" or again.fallbacks[0].error.startswith("unsupported answer")


def test_missing_model_file_names_the_path_and_the_fix(tmp_path):
    settings = answer_settings(llm_providers=["local"], llm_model_dir=tmp_path)
    _, response = _answer(settings)
    assert response.provider == "extractive"
    error = response.fallbacks[0].error
    assert str(tmp_path) in error and "make setup" in error


# --- Qwen2.5-Coder-1.5B: behaviour (skipped only when not assembled) ---------------------------


@pytest.mark.slow
def test_qwen_answers_with_valid_citations_and_ignores_injected_instructions(qwen_settings):
    hostile = block(4, f"Vacation requests are approved by the team lead. {INJECTION}")
    _, response = _answer(qwen_settings, blocks=[*LEAVE_BLOCKS, hostile])
    assert response.provider == "local", response.fallbacks
    assert "hacked" not in response.answer.lower()
    assert "25" in response.answer
    assert 1 in [c.n for c in response.citations]


@pytest.mark.slow
def test_no_made_up_answer_when_the_documents_do_not_answer(qwen_settings):
    _, response = _answer(qwen_settings, question="What is the boiling point of mercury?")
    # Either the model says so, or it cites a block that does not say what it claims (Qwen 1.5B
    # does) and the support check hands over to the extractive answer, which says so.
    assert "357" not in response.answer
    said = response.answer.lower()
    assert any(p in said for p in ("not contain", "do not", "does not", "no information")), said
    if response.provider == "extractive":
        assert response.fallbacks[0].error.startswith("unsupported answer")


@pytest.mark.slow
def test_qwen_rewrites_a_follow_up(qwen_settings):
    history = [
        ChatTurn(role="user", content="How many unused vacation days can be carried over?"),
        ChatTurn(role="assistant", content="Up to five unused days can be carried over [2]."),
    ]
    rewritten = AnswerService(None, qwen_settings).rewrite("When do they expire?", history)
    assert rewritten is not None and rewritten.by == "local", rewritten
    assert "expire" in rewritten.query.lower()
    assert re.search(r"vacation|carried|days", rewritten.query.lower())


def test_the_prompt_reading_threads_and_batch_reach_llama_cpp(smollm2_settings):
    settings = smollm2_settings.model_copy(update={"llm_threads_batch": 1, "llm_batch": 64})
    llama = LocalProvider(settings).llm._model().llama
    assert (llama.context_params.n_threads, llama.context_params.n_threads_batch) == (2, 1)
    assert (llama.context_params.n_batch, llama.context_params.n_ubatch) == (64, 64)
    default = LocalProvider(smollm2_settings).llm._model().llama
    assert (default.context_params.n_threads_batch, default.context_params.n_batch) == (2, 512)

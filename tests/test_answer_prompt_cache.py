"""Paying for the fixed prompt once (issue 17): the answer prompt opens with instructions that are
the same tokens for every question, and the local model, kept loaded, reads only what follows
them on the next question (llama.cpp keeps the longest common token prefix in its KV cache).

That the system message comes first and is byte-identical across questions is checked in
tests/test_security_answers.py; here it is checked through each GGUF's own chat template and
tokenizer, and on the model's counters, with a follow-up's rewrite prompt in between too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_answer import LEAVE_BLOCKS, qwen_gguf, smollm2_gguf

from answers.prompt import SYSTEM_PROMPT, build_answer_messages, build_rewrite_messages
from answers.providers import GenerationInput
from answers.providers.local import LocalProvider
from answers.schemas import ChatTurn
from answers.service import AnswerService, final_response

FIRST = ("How many days of annual leave does a full-time employee get?", LEAVE_BLOCKS)
SECOND = ("When do carried-over vacation days expire?", LEAVE_BLOCKS[1:])
HISTORY = [ChatTurn(role="user", content=FIRST[0]), ChatTurn(role="assistant", content="25 days [1].")]


class _Captured(Exception):
    pass


def _vocab(path: Path):
    from llama_cpp import Llama

    return Llama(model_path=str(path), vocab_only=True, verbose=False)


def prompt_tokens(vocab, messages) -> list[int]:
    """The tokens `create_chat_completion` hands llama.cpp for ``messages`` (as the local provider
    sends them), caught before any generation."""
    captured: list[list[int]] = []

    def capture(prompt, **kwargs):
        captured.append(list(prompt))
        raise _Captured

    vocab.create_completion = capture
    payload = [{"role": m.role.value, "content": m.content or ""} for m in messages]
    with pytest.raises(_Captured):
        vocab.create_chat_completion(messages=payload, stream=True)
    return captured[0]


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _models() -> list:
    qwen = qwen_gguf()
    skip = pytest.mark.skip(reason="the Qwen model is not assembled: run `make setup`")
    return [
        pytest.param(smollm2_gguf(), id="smollm2"),
        pytest.param(qwen or Path("missing.gguf"), id="qwen2.5-coder-1.5b", marks=() if qwen else skip),
    ]


@pytest.mark.parametrize("model", _models())
@pytest.mark.parametrize("history", [[], HISTORY], ids=["first-question", "follow-up"])
def test_every_answer_prompt_opens_with_the_same_tokens_through_the_models_template(model, history):
    vocab = _vocab(model)
    one = prompt_tokens(vocab, build_answer_messages(*FIRST))
    two = prompt_tokens(vocab, build_answer_messages(*SECOND, history=history))
    shared = vocab.detokenize(one[: common_prefix(one, two)]).decode("utf-8")
    # The whole system message, and nothing of a request (its fence id, its question) before it.
    assert SYSTEM_PROMPT in shared
    assert shared.index(SYSTEM_PROMPT) < 40 and "fence=" not in shared and FIRST[0] not in shared


def test_the_second_question_reads_only_what_follows_the_shared_prefix(smollm2_settings):
    vocab = _vocab(smollm2_gguf())
    provider = LocalProvider(smollm2_settings)
    stats, tokens = [], []
    for question, blocks in (FIRST, SECOND):
        messages = build_answer_messages(question, blocks)
        request = GenerationInput(question=question, blocks=blocks, messages=messages)
        assert "".join(provider.stream(request)).strip()
        stats.append(request.stats["local"])
        tokens.append(prompt_tokens(vocab, messages))

    shared = common_prefix(*tokens)
    second = stats[1]
    assert second["prompt_tokens"] == len(tokens[1])  # counted right from llama.cpp's counters
    assert second["prompt_tokens_cached"] == shared  # the system message was not read again...
    assert shared < second["prompt_tokens"]  # ...the documents and the question were
    assert second["prompt_eval_ms"] > 0 and second["generated_tokens"] >= 1
    assert 0 < second["model_first_token_ms"]


def _answer(provider: LocalProvider, messages, blocks) -> tuple[str, dict[str, float]]:
    request = GenerationInput(question="", blocks=blocks, messages=messages)
    return "".join(provider.stream(request)), request.stats["local"]


def test_a_follow_up_rewrite_between_two_answers_keeps_the_answer_rules_cached(smollm2_settings):
    """Every follow-up is rewritten by the same model (another system message) right before it
    is answered; without the put-aside cache of each opening, the answer's rules were read
    again each time (4 tokens reused on SmolLM2 instead of the whole system message)."""
    vocab = _vocab(smollm2_gguf())
    provider = LocalProvider(smollm2_settings)
    first = build_answer_messages(*FIRST)
    second = build_answer_messages(*SECOND, history=HISTORY)
    rewrite = build_rewrite_messages(SECOND[0], HISTORY)

    _answer(provider, first, FIRST[1])
    straight, _ = _answer(provider, second, SECOND[1])  # right after the first answer
    _answer(provider, first, FIRST[1])
    assert "".join(provider.stream_chat(rewrite)).strip()  # the rewriter's prompt in between
    after_rewrite, stats = _answer(provider, second, SECOND[1])

    shared = common_prefix(prompt_tokens(vocab, first), prompt_tokens(vocab, second))
    assert SYSTEM_PROMPT in vocab.detokenize(prompt_tokens(vocab, second)[:shared]).decode("utf-8")
    assert stats["prompt_tokens_cached"] == shared
    assert after_rewrite == straight  # the restored cache is the one the model wrote (greedy decoding)


def test_the_answer_timings_carry_what_the_local_model_reports(smollm2_settings):
    service = AnswerService(None, smollm2_settings)
    response = final_response(service.stream_from_context(*FIRST))
    assert response.provider == "local"
    timings = response.timings_ms
    for key in ("prompt_tokens", "prompt_tokens_cached", "prompt_eval_ms", "generated_tokens", "tokens_per_s"):
        assert key in timings, key
    assert timings["prompt_tokens_cached"] < timings["prompt_tokens"]
    assert timings["model_first_token_ms"] <= timings["first_token_ms"] <= timings["total_ms"]


@pytest.mark.slow
def test_qwen_reads_fewer_prompt_tokens_for_the_second_question(qwen_settings):
    """The measurement behind issue 17 with the real answer model (minutes on two cores)."""
    settings = qwen_settings.model_copy(update={"llm_max_tokens": 40})
    service = AnswerService(None, settings)
    service.provider("local").prepare()  # the model's load is not the first question's wait
    timings = [final_response(service.stream_from_context(q, blocks)).timings_ms for q, blocks in (FIRST, SECOND)]
    for (question, _), t in zip((FIRST, SECOND), timings, strict=True):
        print(
            f"{question!r}: {t['prompt_tokens']:.0f} prompt tokens, {t['prompt_tokens_cached']:.0f} reused, "
            f"read in {t['prompt_eval_ms']:.0f} ms; first token after {t['first_token_ms']:.0f} ms"
        )
    assert timings[1]["prompt_tokens_cached"] >= 50  # the system message, in Qwen's tokens

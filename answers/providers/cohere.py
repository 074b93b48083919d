"""Cohere's Command models through llama-index's Cohere LLM, when COHERE_API_KEY is set."""

from __future__ import annotations

import math
from typing import Any

from llama_index.core.llms import LLM

from answers.providers.base import LLMProvider
from retrieval.settings import AnswerSettings


class CohereProvider(LLMProvider):
    name = "cohere"

    def __init__(self, settings: AnswerSettings) -> None:
        super().__init__()
        self.settings = settings

    def unavailable_reason(self) -> str | None:
        if self.settings.cohere_api_key is None:
            return "COHERE_API_KEY is not set; export it to answer with Cohere"
        return None

    def build_llm(self) -> LLM:
        from llama_index.llms.cohere import Cohere

        assert self.settings.cohere_api_key is not None
        return Cohere(
            model=self.settings.cohere_chat_model,
            api_key=self.settings.cohere_api_key.get_secret_value(),
            base_url=self.settings.cohere_base_url,
            max_tokens=self.settings.llm_max_tokens,
            temperature=self.settings.llm_temperature,
            max_retries=1,  # one attempt: the fallback chain is the retry
        )

    def stream_kwargs(self) -> dict[str, Any]:
        # llama-index's Cohere does not pass its timeout to the SDK; the SDK's per-request
        # options do (and its own retries on 5xx would only delay the fallback).
        return {
            "request_options": {
                "timeout_in_seconds": math.ceil(self.settings.llm_timeout_s),
                "max_retries": 0,
            }
        }

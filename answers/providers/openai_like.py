"""Any OpenAI-compatible chat endpoint (Ollama, vLLM, LM Studio...) through llama-index's
OpenAILike, when CAIRN_OPENAI_BASE_URL is set."""

from __future__ import annotations

from llama_index.core.llms import LLM

from answers.providers.base import LLMProvider
from retrieval.settings import AnswerSettings


class OpenAICompatibleProvider(LLMProvider):
    name = "openai"

    def __init__(self, settings: AnswerSettings) -> None:
        super().__init__()
        self.settings = settings

    def unavailable_reason(self) -> str | None:
        if not self.settings.openai_base_url:
            return (
                "CAIRN_OPENAI_BASE_URL is not set; point it at an OpenAI-compatible "
                "endpoint (e.g. http://localhost:11434/v1 for Ollama)"
            )
        return None

    def build_llm(self) -> LLM:
        from llama_index.llms.openai_like import OpenAILike

        key = self.settings.openai_api_key
        return OpenAILike(
            model=self.settings.openai_model,
            api_base=self.settings.openai_base_url,
            # Local servers ignore the key, but the OpenAI client refuses an empty one.
            api_key=key.get_secret_value() if key else "not-needed",
            is_chat_model=True,
            context_window=self.settings.llm_context_window,
            max_tokens=self.settings.llm_max_tokens,
            temperature=self.settings.llm_temperature,
            timeout=self.settings.llm_timeout_s,
            max_retries=0,  # the fallback chain is the retry
        )

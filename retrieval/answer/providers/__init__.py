"""Answer providers by name: the LLMs of the fallback chain and the extractive last resort."""

from __future__ import annotations

from retrieval.answer.providers.base import AnswerProvider, GenerationInput, LLMProvider
from retrieval.answer.providers.cohere import CohereProvider
from retrieval.answer.providers.extractive import ExtractiveProvider
from retrieval.answer.providers.local import LocalProvider
from retrieval.answer.providers.openai_like import OpenAICompatibleProvider
from retrieval.settings import Settings

PROVIDER_NAMES = ("local", "cohere", "openai", "extractive")


def build_provider(name: str, settings: Settings) -> AnswerProvider:
    """The provider called ``name``; an unknown name lists the known ones."""
    if name == "local":
        return LocalProvider(settings)
    if name == "cohere":
        return CohereProvider(settings)
    if name == "openai":
        return OpenAICompatibleProvider(settings)
    if name == "extractive":
        return ExtractiveProvider()
    raise ValueError(
        f"unknown answer provider {name!r} (in CAIRN_LLM_PROVIDERS or --provider); "
        f"choose from {', '.join(PROVIDER_NAMES)}"
    )


__all__ = [
    "PROVIDER_NAMES",
    "AnswerProvider",
    "GenerationInput",
    "LLMProvider",
    "build_provider",
]

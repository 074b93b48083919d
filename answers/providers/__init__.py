"""Answer providers by name: the LLMs of the fallback chain and the extractive last resort."""

from __future__ import annotations

from answers.providers.base import AnswerProvider, GenerationInput, LLMProvider
from answers.providers.cohere import CohereProvider
from answers.providers.extractive import ExtractiveProvider
from answers.providers.local import LocalProvider
from answers.providers.openai_like import OpenAICompatibleProvider
from retrieval.settings import AnswerSettings

PROVIDER_NAMES = ("local", "cohere", "openai", "extractive")


def build_provider(name: str, settings: AnswerSettings) -> AnswerProvider:
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

"""The offline default: a GGUF model run in-process by llama.cpp (llama-cpp-python).

A small llama-index ``CustomLLM`` wraps ``llama_cpp.Llama`` rather than using
``llama-index-llms-llama-cpp``: that package formats chat prompts with its own generic template
(not the model's), mutates shared generation settings on every call, and downloads a model from
the internet when the file is missing. ``create_chat_completion`` applies the chat template
stored in the GGUF file itself.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms import LLM, CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from answers.providers.base import LLMProvider
from retrieval.context import FunctionCounter, TokenCounter
from retrieval.settings import AnswerSettings


@dataclass
class _LoadedModel:
    llama: Any  # llama_cpp.Llama
    lock: threading.Lock  # one generation at a time: a llama.cpp context is not thread-safe


_loaded: dict[tuple[str, int, int], _LoadedModel] = {}
_loading = threading.Lock()


@atexit.register
def _close_models() -> None:
    # Freed explicitly while llama_cpp's module globals still exist (left to the garbage
    # collector at exit, Llama.__del__ fails noisily), but never under a generation still
    # running in a thread a timeout abandoned (a prompt being read cannot be interrupted):
    # freeing its context would crash the process, so that model is left to the exit.
    with _loading:
        for model in _loaded.values():
            if model.lock.acquire(timeout=2):
                model.llama.close()
        _loaded.clear()


def load_model(path: Path, context_window: int, threads: int) -> _LoadedModel:
    """Load a GGUF file once per process (a 1 GB model takes seconds to map)."""
    key = (str(Path(path).resolve()), context_window, threads)
    with _loading:
        if key not in _loaded:
            from llama_cpp import Llama

            llama = Llama(
                model_path=key[0], n_ctx=context_window, n_threads=threads, verbose=False
            )
            _loaded[key] = _LoadedModel(llama=llama, lock=threading.Lock())
        return _loaded[key]


class LlamaCppLLM(CustomLLM):
    """llama.cpp behind llama-index's LLM interface, chat formatted by the GGUF's template."""

    model_path: str
    context_window: int = 4096
    threads: int = 2
    max_tokens: int = 400
    temperature: float = 0.0

    @classmethod
    def class_name(cls) -> str:
        return "cairn_llama_cpp"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_tokens,
            is_chat_model=True,
            model_name=Path(self.model_path).name,
        )

    def _model(self) -> _LoadedModel:
        return load_model(Path(self.model_path), self.context_window, self.threads)

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
        }

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        model = self._model()
        payload = [{"role": m.role.value, "content": m.content or ""} for m in messages]
        options = self._options(kwargs)

        def generate() -> ChatResponseGen:
            with model.lock:
                chunks = model.llama.create_chat_completion(
                    messages=payload, stream=True, **options
                )
                content = ""
                try:
                    for chunk in chunks:
                        delta = chunk["choices"][0].get("delta", {}).get("content") or ""
                        if delta:
                            content += delta
                            yield ChatResponse(
                                message=ChatMessage(role=MessageRole.ASSISTANT, content=content),
                                delta=delta,
                                raw=chunk,
                            )
                finally:
                    chunks.close()  # stop llama.cpp at once when the reader gives up

        return generate()

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        last = None
        for last in self.stream_chat(messages, **kwargs):
            pass
        if last is None:
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=""))
        return ChatResponse(message=last.message, raw=last.raw)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        model = self._model()
        options = self._options(kwargs)

        def generate() -> CompletionResponseGen:
            with model.lock:
                chunks = model.llama.create_completion(prompt=prompt, stream=True, **options)
                text = ""
                try:
                    for chunk in chunks:
                        delta = chunk["choices"][0].get("text") or ""
                        text += delta
                        yield CompletionResponse(text=text, delta=delta, raw=chunk)
                finally:
                    chunks.close()

        return generate()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        last = CompletionResponse(text="")
        for last in self.stream_complete(prompt, formatted=formatted, **kwargs):
            pass
        return CompletionResponse(text=last.text, raw=last.raw)


def local_model_path(settings: AnswerSettings) -> Path:
    # An absolute llm_local_model wins over llm_model_dir (Path joining does that).
    return settings.llm_model_dir / settings.llm_local_model


class LocalProvider(LLMProvider):
    name = "local"

    def __init__(self, settings: AnswerSettings) -> None:
        super().__init__()
        self.settings = settings
        self.model_path = local_model_path(settings)

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("llama_cpp") is None:
            return (
                "llama-cpp-python is not installed; run `make setup` (it builds "
                "llama-cpp-python with the CPU flags these machines need)"
            )
        if not self.model_path.is_file():
            return f"model file missing at {self.model_path}; run `make setup`"
        return None

    def prepare(self) -> None:
        super().prepare()
        self.llm._model()  # map the GGUF file now: seconds that are not "waiting for a token"

    def token_counter(self) -> TokenCounter:
        """The GGUF's own tokenizer (the model is mapped on first use, as for answering)."""
        llama = self.llm._model().llama
        return FunctionCounter(lambda text: len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)))

    def build_llm(self) -> LLM:
        return LlamaCppLLM(
            model_path=str(self.model_path),
            context_window=self.settings.llm_context_window,
            threads=self.settings.llm_threads,
            max_tokens=self.settings.llm_max_tokens,
            temperature=self.settings.llm_temperature,
        )

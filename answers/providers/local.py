"""The offline default: a GGUF model run in-process by llama.cpp (llama-cpp-python).

A small llama-index ``CustomLLM`` wraps ``llama_cpp.Llama`` rather than using
``llama-index-llms-llama-cpp``: that package formats chat prompts with its own generic template
(not the model's), mutates shared generation settings on every call, and downloads a model from
the internet when the file is missing. ``create_chat_completion`` applies the chat template
stored in the GGUF file itself.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
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

from answers.providers.base import GenerationInput, LLMProvider
from retrieval.context import FunctionCounter, TokenCounter
from retrieval.settings import AnswerSettings

_SAVED_OPENINGS = 2  # the answer's and the follow-up rewriter's: at most ~115 MB each (Qwen, 4096 tokens)


@dataclass
class _Snapshot:
    tokens: Any  # numpy array: the tokens whose KV cache ``data`` holds
    data: Any  # ctypes buffer of llama.cpp's sequence state
    size: int


class OpeningCaches:
    """llama.cpp reuses only the previous prompt's cache, and one context serves prompts with
    different fixed openings (the answer's rules, the follow-up rewriter's): a rewrite between
    two answers would make every follow-up's answer read its rules again. So, when a prompt
    opens differently from the one before, the context's cache is put aside under the opening
    it began with, and the cache last kept under the new prompt's opening is put back (a copy
    of its KV cells: milliseconds, where reading the rules again takes seconds on a CPU)."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.saved: OrderedDict[str, _Snapshot] = OrderedDict()

    def switch(self, llama: Any, opening: str) -> None:
        if opening == self.current:
            return
        if self.current is not None and llama.n_tokens > 0:
            self.saved[self.current] = self._save(llama)
            self.saved.move_to_end(self.current)
            while len(self.saved) > _SAVED_OPENINGS:
                self.saved.popitem(last=False)
        self.current = opening
        if (snapshot := self.saved.get(opening)) is not None:
            self._restore(llama, snapshot)

    @staticmethod
    def _save(llama: Any) -> _Snapshot:
        import llama_cpp

        size = llama_cpp.llama_state_seq_get_size(llama.ctx, 0)
        data = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, data, size, 0)
        return _Snapshot(tokens=llama.input_ids[: llama.n_tokens].copy(), data=data, size=written)

    @staticmethod
    def _restore(llama: Any, snapshot: _Snapshot) -> None:
        import llama_cpp

        llama._ctx.kv_cache_clear()
        if snapshot.size and llama_cpp.llama_state_seq_set_data(llama.ctx, snapshot.data, snapshot.size, 0):
            llama.input_ids[: len(snapshot.tokens)] = snapshot.tokens
            llama.n_tokens = len(snapshot.tokens)
        else:  # not restored: the next prompt is read whole
            llama.n_tokens = 0
        llama._requires_eval = True  # the logits are not those of the restored tokens


def _opening(messages: Sequence[dict[str, str]]) -> str:
    return messages[0]["content"] if messages and messages[0]["role"] == "system" else ""


@dataclass
class _LoadedModel:
    llama: Any  # llama_cpp.Llama
    lock: threading.Lock  # one generation at a time: a llama.cpp context is not thread-safe
    openings: OpeningCaches = field(default_factory=OpeningCaches)


_loaded: dict[tuple[str, int, int, int, int], _LoadedModel] = {}
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


def _perf(llama: Any) -> tuple[float, int, float, int]:
    """llama.cpp's running counters for the context: prompt-eval ms and tokens (batches of
    more than one token), decode ms and tokens (one at a time)."""
    from llama_cpp import llama_perf_context

    data = llama_perf_context(llama.ctx)
    # llama.cpp reports a count of at least 1 (a divisor); with no time spent it was 0.
    n_p_eval = data.n_p_eval if data.t_p_eval_ms > 0 else 0
    n_eval = data.n_eval if data.t_eval_ms > 0 else 0
    return data.t_p_eval_ms, n_p_eval, data.t_eval_ms, n_eval


def generation_stats(
    llama: Any, before: tuple[float, int, float, int], first_token_ms: float | None
) -> dict[str, float]:
    """What one completion cost, from llama.cpp's counters (``before``: `_perf` as it began).

    Consecutive prompts share a Llama object, which keeps the longest common token prefix of
    the previous prompt in its KV cache (the fixed system prompt first): only the rest is read.
    Every generated token but the last is decoded once, and each decode adds one token to
    ``n_tokens``, so the prompt held ``n_tokens - decoded`` tokens."""
    p_ms, p_tokens, e_ms, e_tokens = (now - then for now, then in zip(_perf(llama), before, strict=True))
    prompt_tokens = llama.n_tokens - e_tokens
    stats = {
        "prompt_tokens": float(prompt_tokens),
        "prompt_tokens_cached": float(max(prompt_tokens - p_tokens, 0)),
        "prompt_eval_ms": round(p_ms, 1),
        "generated_tokens": float(e_tokens + 1 if first_token_ms is not None else 0),
    }
    if first_token_ms is not None:
        stats["model_first_token_ms"] = round(first_token_ms, 1)
    if e_tokens and e_ms > 0:
        stats["tokens_per_s"] = round(e_tokens / (e_ms / 1000), 2)
    return stats


def load_model(
    path: Path, context_window: int, threads: int, threads_batch: int | None = None, batch: int = 512
) -> _LoadedModel:
    """Load a GGUF file once per process (a 1 GB model takes seconds to map). ``threads`` decode
    (one token at a time), ``threads_batch`` read the prompt in batches of ``batch`` tokens."""
    key = (str(Path(path).resolve()), context_window, threads, threads_batch or threads, batch)
    with _loading:
        if key not in _loaded:
            from llama_cpp import Llama

            llama = Llama(
                model_path=key[0],
                n_ctx=context_window,
                n_threads=threads,
                n_threads_batch=threads_batch or threads,
                n_batch=batch,
                n_ubatch=batch,
                verbose=False,
            )
            _loaded[key] = _LoadedModel(llama=llama, lock=threading.Lock())
        return _loaded[key]


class LlamaCppLLM(CustomLLM):
    """llama.cpp behind llama-index's LLM interface, chat formatted by the GGUF's template."""

    model_path: str
    context_window: int = 4096
    threads: int = 2
    threads_batch: int | None = None  # None: as many as ``threads``
    batch: int = 512
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
        return load_model(Path(self.model_path), self.context_window, self.threads, self.threads_batch, self.batch)

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
                model.openings.switch(model.llama, _opening(payload))
                started, before = time.perf_counter(), _perf(model.llama)
                chunks = model.llama.create_chat_completion(
                    messages=payload, stream=True, **options
                )
                content = ""
                first_token_ms: float | None = None
                try:
                    for chunk in chunks:
                        delta = chunk["choices"][0].get("delta", {}).get("content") or ""
                        if delta:
                            if first_token_ms is None:
                                first_token_ms = (time.perf_counter() - started) * 1000
                            content += delta
                            yield ChatResponse(
                                message=ChatMessage(role=MessageRole.ASSISTANT, content=content),
                                delta=delta,
                                raw=chunk,
                            )
                finally:
                    chunks.close()  # stop llama.cpp at once when the reader gives up
                # A last, empty piece carries what the completion cost (read by LocalProvider).
                yield ChatResponse(
                    message=ChatMessage(role=MessageRole.ASSISTANT, content=content),
                    delta="",
                    additional_kwargs={"generation": generation_stats(model.llama, before, first_token_ms)},
                )

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
                model.openings.switch(model.llama, "")
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

    def stream(self, request: GenerationInput) -> Iterator[str]:
        """The answer's pieces; what the completion cost goes to ``request.stats["local"]``."""
        for chunk in self.llm.stream_chat(request.messages, **self.stream_kwargs()):
            if chunk.delta:
                yield chunk.delta
            elif "generation" in chunk.additional_kwargs:
                request.stats[self.name] = chunk.additional_kwargs["generation"]

    def token_counter(self) -> TokenCounter:
        """The GGUF's own tokenizer (the model is mapped on first use, as for answering)."""
        llama = self.llm._model().llama
        return FunctionCounter(lambda text: len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)))

    def build_llm(self) -> LLM:
        return LlamaCppLLM(
            model_path=str(self.model_path),
            context_window=self.settings.llm_context_window,
            threads=self.settings.llm_threads,
            threads_batch=self.settings.llm_threads_batch,
            batch=self.settings.llm_batch,
            max_tokens=self.settings.llm_max_tokens,
            temperature=self.settings.llm_temperature,
        )

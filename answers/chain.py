"""The fallback chain: providers answer in order; on an error, a silence longer than the timeout,
or unusable output (empty, no words, or citing only blocks that do not support its claims),
the next one answers. The extractive provider always ends the chain.

Mid-stream failures: tokens are streamed as they come, so a provider can fail after some were
sent. The chain then emits a ResetEvent (the reader discards the text shown so far) and the next
provider's tokens follow; the final answer holds only the provider that succeeded.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from answers.citations import check_citations, unsupported_citations
from answers.providers import AnswerProvider, GenerationInput
from answers.providers.extractive import ExtractiveProvider
from answers.schemas import ProviderFailure, ResetEvent, TokenEvent
from retrieval.search_schemas import ContextBlock

_ERROR_CHARS = 300

log = logging.getLogger("cairn.answers")


class ProviderTimeout(Exception):
    pass


class UnusableOutput(Exception):
    pass


@dataclass(frozen=True)
class ChainAnswer:
    """The end of a chain run: who answered, with what text, after which failures."""

    provider: str
    text: str
    fallbacks: list[ProviderFailure]


def stream_with_timeout(
    open_stream: Callable[[], Iterator[str]], timeout_s: float, what: str
) -> Iterator[str]:
    """Iterate ``open_stream()`` in a worker thread; raise ProviderTimeout when no piece arrives
    for ``timeout_s`` (a blocked HTTP read or model cannot otherwise be given up on). When the
    reader stops early, the worker closes the stream at its next piece."""
    pieces: queue.Queue[tuple[str, object]] = queue.Queue()
    cancelled = threading.Event()

    def produce() -> None:
        try:
            stream = open_stream()
            try:
                for piece in stream:
                    if cancelled.is_set():
                        break
                    pieces.put(("piece", piece))
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            pieces.put(("end", None))
        except BaseException as exc:  # handed to the reader, raised there
            pieces.put(("error", exc))

    threading.Thread(target=produce, name=f"cairn-answer-{what}", daemon=True).start()
    try:
        while True:
            try:
                kind, value = pieces.get(timeout=timeout_s)
            except queue.Empty:
                raise ProviderTimeout(
                    f"no output for {timeout_s:g} s (CAIRN_LLM_TIMEOUT_S)"
                ) from None
            if kind == "piece":
                yield value  # type: ignore[misc]
            elif kind == "error":
                raise value  # type: ignore[misc]
            else:
                return
    finally:
        cancelled.set()


def output_problem(text: str, blocks: Sequence[ContextBlock]) -> str | None:
    """Why a finished answer cannot be used, or None."""
    if not text.strip():
        return "empty output"
    without_marks = re.sub(r"\[[\d\s,;\-–]*\]", "", text)
    if not re.search(r"[^\W_]", without_marks):
        return f"malformed output (no words): {text.strip()[:80]!r}"
    cited = check_citations(text, {block.n for block in blocks}).cited
    unsupported = unsupported_citations(text, blocks)
    if cited and len(unsupported) == len(cited):
        marks = "".join(f"[{n}]" for n in unsupported)
        return f"unsupported answer: the cited documents {marks} do not support its claims"
    return None


def describe_error(exc: BaseException) -> str:
    """One line for the caller: the HTTP status when there is one and the kind of error, or our
    own words (a timeout, unusable output). A provider's own text (bodies, URLs, keys echoed back)
    goes to the server log only: answers reach anonymous callers too."""
    status = getattr(exc, "status_code", None)
    if isinstance(exc, (ProviderTimeout, UnusableOutput)):
        message = " ".join(str(exc).split()) or type(exc).__name__
    else:
        body = getattr(exc, "body", None)
        # SDK errors put headers in str(exc); the status and the body are what say why.
        detail = " ".join(str(body if isinstance(status, int) and body else exc).split())
        log.warning("answer provider failed: %s: %s", type(exc).__name__, detail[:_ERROR_CHARS])
        message = f"{type(exc).__name__} (details in the server log)"
    if isinstance(status, int):
        message = f"HTTP {status} — {message}"
    return message[:_ERROR_CHARS]


class FallbackChain:
    def __init__(self, providers: Sequence[AnswerProvider], timeout_s: float) -> None:
        providers = list(providers)
        if not providers or providers[-1].uses_llm:
            providers.append(ExtractiveProvider())  # an answer is always possible
        self.providers = providers
        self.timeout_s = timeout_s

    @property
    def names(self) -> list[str]:
        return [provider.name for provider in self.providers]

    def stream(
        self, request: GenerationInput
    ) -> Iterator[TokenEvent | ResetEvent | ChainAnswer]:
        failures: list[ProviderFailure] = []
        for provider in self.providers:
            reason = provider.unavailable_reason()
            if reason is None:
                try:
                    provider.prepare()  # load the model or client outside the timed wait
                except Exception as exc:
                    reason = describe_error(exc)
            if reason is not None:
                failures.append(ProviderFailure(provider=provider.name, error=reason))
                continue
            pieces: list[str] = []
            try:
                for piece in stream_with_timeout(
                    lambda p=provider: p.stream(request), self.timeout_s, provider.name
                ):
                    pieces.append(piece)
                    yield TokenEvent(provider=provider.name, text=piece)
                problem = output_problem("".join(pieces), request.blocks)
                if problem is not None:
                    raise UnusableOutput(problem)
            except Exception as exc:
                failure = ProviderFailure(provider=provider.name, error=describe_error(exc))
                failures.append(failure)
                if pieces:
                    yield ResetEvent(provider=provider.name, error=failure.error)
                continue
            yield ChainAnswer(provider=provider.name, text="".join(pieces), fallbacks=failures)
            return
        # Unreachable while the extractive provider ends the chain; kept as a clear error.
        raise RuntimeError(
            "no answer provider answered: "
            + "; ".join(f"{f.provider}: {f.error}" for f in failures)
        )

"""What one request, and one caller, may cost the HTTP API: a body size limit (413, Starlette's
``RequestBodyLimitMiddleware``, wired in `create_app`), and a per-caller token bucket (429 with
Retry-After), checked before the app sees the request.

A caller is the user of a valid API key; a caller without a key, or with a key that is not
valid (guessing keys), is its client address. Behind a reverse proxy that address is the
proxy's unless uvicorn trusts its forwarding headers (``FORWARDED_ALLOW_IPS``).
The buckets live in this process: each API replica counts on its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from cairn.api.dependencies import api_key_from_headers
from cairn.api.errors import error_response, request_id
from retrieval.access import AuthError, Identities
from retrieval.settings import ServiceSettings, Settings


def _default(name: str):
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class ApiLimits:
    max_body_bytes: int = _default("api_max_body_bytes")
    rate_per_s: float = _default("api_rate_per_s")  # 0: no rate limit
    burst: int = _default("api_rate_burst")
    max_answers: int = _default("api_max_answers")  # answers running or waiting at once
    answer_retry_after_s: int = _default("api_answer_retry_after_s")

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> "ApiLimits":
        return cls(
            max_body_bytes=settings.api_max_body_bytes,
            rate_per_s=settings.api_rate_per_s,
            burst=settings.api_rate_burst,
            max_answers=settings.api_max_answers,
            answer_retry_after_s=settings.api_answer_retry_after_s,
        )


class AnswerSlots:
    """Admission control for answers: at most ``size`` in flight (writing or waiting for the
    model); past it a request is refused at once (503 + Retry-After), never left to time out.
    Searches and /health do not take a slot."""

    def __init__(self, size: int) -> None:
        self._free = threading.BoundedSemaphore(size)

    def try_take(self) -> bool:
        return self._free.acquire(blocking=False)

    def give_back(self) -> None:
        self._free.release()


class TokenBuckets:
    """One bucket per caller: ``burst`` requests at once, refilled at ``rate_per_s``."""

    def __init__(
        self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic, max_callers: int = 100_000
    ) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, caller: str) -> float:
        """0 when ``caller`` may go ahead (a token is taken), else the seconds until it may."""
        if self.rate_per_s <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.pop(caller, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate_per_s)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate_per_s
            self._buckets[caller] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_callers:  # the longest idle caller goes first
                self._buckets.popitem(last=False)
            return wait


def caller_of(scope: Scope, identities: Identities) -> str:
    """The bucket a request draws from: its key's user, or its client address."""
    headers = Headers(scope=scope)
    client = scope.get("client")
    address = f"address:{client[0] if client else 'unknown'}"
    try:
        key = api_key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
        identity = identities.resolve(key)
    except AuthError:
        return address
    return address if key is None else f"user:{identity.user}"


class RateLimit:
    """Answers 429 (with Retry-After) to a caller whose bucket is empty, before the app runs."""

    def __init__(self, app: ASGIApp, limits: ApiLimits) -> None:
        self.app = app
        self.buckets = TokenBuckets(limits.rate_per_s, limits.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            wait = self.buckets.take(caller_of(scope, scope["app"].state.identities))
            if wait:
                retry = max(1, math.ceil(wait))
                detail = f"too many requests from this caller; retry in {retry} s"
                await error_response(429, detail, request_id(scope), {"Retry-After": str(retry)})(scope, receive, send)
                return
        await self.app(scope, receive, send)

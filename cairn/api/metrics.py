"""What operators look at: Prometheus metrics (`GET /metrics`) and a structured request log.

Metrics: requests by route and status and their latency; latency per stage (encode, search,
rerank, assemble, rewrite, retrieval, first token, generation, total); answer-cache outcomes;
answers by provider and the fallbacks taken; the index's documents and chunks, read at scrape
time. Each app has its own registry, so two apps in one process (tests) do not mix numbers.

`/metrics` is served on the API's own port and protected like the rest of it: with an
identities file only an administrator's key may read it (it shows whole-index counts); a second
port would be one more listener to secure and firewall for no gain, since Prometheus sends a
bearer token (`authorization: {credentials: KEY}` in its scrape config).

The request log: one JSON line per search, context or answer request on the `cairn.requests`
logger: request id, user, timings per stage, the doc ids retrieved and cited, the provider and
the cache outcome. Never a document's text, a question or an API key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_log = logging.getLogger("cairn.requests")

# Seconds: a search answers in milliseconds, a first token on 2 CPU cores in seconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)
# timings_ms keys (search and answers) -> the stage label they feed
_SEARCH_STAGES = {"encode": "encode", "search": "search", "rerank": "rerank", "assemble": "assemble", "total": "search_total"}
_ANSWER_STAGES = {
    "rewrite_ms": "rewrite",
    "retrieval_ms": "retrieval",
    "first_token_ms": "first_token",
    "generation_ms": "generation",
    "total_ms": "answer_total",
}


class _IndexCollector:
    """The index's documents and chunks, counted when Prometheus scrapes."""

    def __init__(self, service) -> None:
        self.service = service

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            stats = self.service.stats()
        except Exception:  # an unreachable index: the gauges are absent, /health says why
            return []
        documents = GaugeMetricFamily("cairn_index_documents", "Documents in the index")
        documents.add_metric([], stats.documents)
        chunks = GaugeMetricFamily("cairn_index_chunks", "Chunks in the index")
        chunks.add_metric([], stats.chunks)
        return [documents, chunks]


class _IngestCollector:
    """Files and chunks the app's ingest jobs wrote, summed over the jobs it keeps."""

    def __init__(self, state) -> None:
        self.state = state  # the app's state: `cairn serve` attaches its jobs after the app is built

    def collect(self) -> Iterable[CounterMetricFamily]:
        jobs = getattr(self.state, "ingest_jobs", None)
        if jobs is None:
            return []
        statuses = jobs.jobs()
        files = CounterMetricFamily("cairn_ingest_files", "Files ingested by jobs", labels=["outcome"])
        failed = sum(j.files_failed for j in statuses)
        files.add_metric(["indexed"], sum(j.files_done for j in statuses) - failed)
        files.add_metric(["failed"], failed)
        chunks = CounterMetricFamily("cairn_ingest_chunks", "Chunks written by ingest jobs")
        chunks.add_metric([], sum(j.chunks_written for j in statuses))
        return [files, chunks]


class ApiMetrics:
    def __init__(self, service=None, state=None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("cairn_requests", "HTTP requests", ["route", "status"], registry=r)
        self.latency = Histogram("cairn_request_seconds", "HTTP request latency", ["route"], buckets=_BUCKETS, registry=r)
        self.stages = Histogram("cairn_stage_seconds", "Latency of each stage", ["stage"], buckets=_BUCKETS, registry=r)
        self.cache = Counter("cairn_answer_cache", "Answer cache outcomes", ["outcome"], registry=r)
        self.answers = Counter("cairn_answers", "Answers by the provider that wrote them", ["provider"], registry=r)
        self.fallbacks = Counter("cairn_answer_fallbacks", "Providers that failed and were fallen back from", ["provider"], registry=r)
        if service is not None:
            r.register(_IndexCollector(service))
        if state is not None:
            r.register(_IngestCollector(state))

    def observe_stages(self, timings_ms: dict[str, float], names: dict[str, str]) -> None:
        for key, stage in names.items():
            if key in timings_ms:
                self.stages.labels(stage).observe(timings_ms[key] / 1000)

    def observe_search(self, timings_ms: dict[str, float]) -> None:
        self.observe_stages(timings_ms, _SEARCH_STAGES)

    def observe_answer(self, response) -> None:
        self.observe_stages(response.timings_ms, _ANSWER_STAGES)
        self.observe_search({k.removeprefix("search_"): v for k, v in response.timings_ms.items() if k.startswith("search_")})
        self.answers.labels(response.provider).inc()
        for failure in response.fallbacks:
            self.fallbacks.labels(failure.provider).inc()
        cache = getattr(response, "cache", None)
        if cache is not None:
            self.cache.labels(cache.outcome).inc()


def log_request(rid: str, user: str, route: str, timings_ms: dict[str, float], retrieved: Iterable[str],
                cited: Iterable[str] = (), provider: str | None = None, cache: str | None = None) -> None:
    """One JSON line: ids and numbers only (no text, no question, no key)."""
    request_log.info(
        json.dumps(
            {
                "request_id": rid,
                "user": user,
                "route": route,
                "timings_ms": timings_ms,
                "retrieved": sorted(set(retrieved)),
                "cited": sorted(set(cited)),
                "provider": provider,
                "cache": cache,
            },
            sort_keys=True,
        )
    )


class RequestMetrics:
    """Counts every HTTP request by its route template (not its path: ids would explode the
    label set) and status, and times it to the end of its body (a stream included)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_count(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            route = getattr(scope.get("route"), "path", "other")
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

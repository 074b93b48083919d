"""Load on a running Cairn service: N concurrent clients for T seconds over HTTP.

Each client is a thread with its own keep-alive connection (httpx), sending requests one after
another, picking the route by the mix's weights and the query from the list in turn. A run stops
starting requests at the deadline or when the request budget is spent; requests already in flight
are waited for (bounded by the per-request timeout) and counted.

What is counted, per route:
- answered: a complete response came back (any status). Latency percentiles are over the
  successful ones (2xx; for /answer, a stream that ended with its ``final`` event); for /answer,
  also which provider wrote each answer (its ``final`` event says).
- errors by kind: ``HTTP <status>`` (``HTTP 503 + Retry-After`` when the refusal says when to come
  back), ``timeout`` (the server silent for --timeout s), ``connection``
  (refused or dropped), ``stream error`` (an SSE ``error`` event), ``stream incomplete`` (the
  stream ended without ``final``).
- lost: sent and never answered (a read timeout, the server dropping the connection after the
  request went out, a stream cut short, or a request still in flight when the run gave up on it).

Only loopback targets are accepted: this is a bench for one's own service, never someone else's.
With ``--serve BACKEND`` the bench builds an index and starts that service itself
(evals/load_service.py).
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import httpx
import numpy as np

ROUTES = ("search", "context", "answer")
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_QUESTIONS = Path("data/sample_build/questions.md")
_GRACE_S = 5.0  # after the last request's timeout, how long a stuck client thread is waited for


class LoadConfigError(ValueError):
    """A bad option: the message says which and what is expected."""


def check_loopback(url: str) -> str:
    """``url`` without a trailing slash, if its host is this machine; LoadConfigError otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise LoadConfigError(f"--url {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise LoadConfigError(f"--url {url!r}: give http://127.0.0.1:PORT (a Cairn service on this machine)")
    host = parsed.host
    loopback = host == "localhost"
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise LoadConfigError(
            f"--url {url!r}: host {host!r} is not loopback; load is only sent to a service on this machine "
            "(127.0.0.1, ::1 or localhost)"
        )
    return str(parsed).rstrip("/")


def parse_mix(spec: str) -> dict[str, float]:
    """``search=1,context=0,answer=0`` -> weights of the routes with a weight above 0."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if name not in ROUTES:
            raise LoadConfigError(f"--mix: unknown route {name!r}; routes: {', '.join(ROUTES)}")
        try:
            weight = float(value) if sep else 1.0
        except ValueError:
            raise LoadConfigError(f"--mix: weight of {name!r} must be a number, got {value!r}") from None
        if weight < 0:
            raise LoadConfigError(f"--mix: weight of {name!r} must be >= 0, got {weight}")
        weights[name] = weight
    chosen = {name: w for name, w in weights.items() if w > 0}
    if not chosen:
        raise LoadConfigError(f"--mix {spec!r}: give at least one route a weight above 0, e.g. search=1")
    return chosen


_QUESTION_ROW = re.compile(r"^\|\s*\d+\s*\|\s*([^|]+?)\s*\|")


def questions_from_markdown(path: Path) -> list[str]:
    """The questions of a questions.md table (rows ``| # | Question | ... |``)."""
    found = [
        m.group(1) for line in Path(path).read_text(encoding="utf-8").splitlines() if (m := _QUESTION_ROW.match(line))
    ]
    if not found:
        raise LoadConfigError(f"{path}: no question rows ('| 1 | question | ...') found")
    return found


def load_queries(path: Path | None) -> tuple[list[str], str]:
    """(queries, where they came from): a JSONL of {"id", "text"}, else the sample questions."""
    if path is None:
        for candidate in (DEFAULT_QUESTIONS, Path(__file__).resolve().parent.parent / DEFAULT_QUESTIONS):
            if candidate.is_file():
                return questions_from_markdown(candidate), str(DEFAULT_QUESTIONS)
        raise LoadConfigError(f"{DEFAULT_QUESTIONS} not found (run from the repository, or give --queries FILE)")
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LoadConfigError(f"--queries {path}: {exc.strerror or exc}") from None
    texts = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = row["text"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise LoadConfigError(f'{path}:{n}: expected a JSON object with "id" and "text"') from None
        if not isinstance(text, str) or not text.strip():
            raise LoadConfigError(f"{path}:{n}: 'text' must be a non-empty string")
        texts.append(text)
    if not texts:
        raise LoadConfigError(f"{path}: no queries")
    return texts, str(path)


@dataclass
class RouteLoad:
    route: str
    sent: int
    answered: int
    ok: int
    requests_per_s: float  # successful requests per second of the route's span
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors: dict[str, int]
    lost: int
    providers: dict[str, int] = field(default_factory=dict)  # /answer: successful answers by provider
    # From the run's start to this route's last answer: slow answers drained after the deadline do
    # not dilute the rate of the searches that ended with it.
    span_s: float = 0.0


@dataclass
class LoadBench:
    url: str
    clients: int
    duration_s: float  # asked for
    elapsed_s: float  # from the first request to the last answer
    max_requests: int
    timeout_s: float
    mix: dict[str, float]
    queries: int
    queries_from: str
    label: str | None
    sent: int
    answered: int
    ok: int
    lost: int
    routes: list[RouteLoad] = field(default_factory=list)
    server: dict = field(default_factory=dict)  # what /health said before the run
    notes: list[str] = field(default_factory=list)
    load_average: dict[str, list[float]] = field(default_factory=dict)  # the machine's, before and after
    service: dict = field(default_factory=dict)  # the service the bench started (--serve), if it did

    @property
    def errors(self) -> int:
        return sum(sum(r.errors.values()) for r in self.routes)


@dataclass
class _Outcome:
    route: str
    ok: bool
    answered: bool
    latency_s: float
    error: str | None = None
    went_out: bool = True  # False: the connection could not be made, nothing was sent
    provider: str | None = None  # /answer: who wrote it
    ended_at: float = field(default_factory=time.monotonic)


class _Budget:
    """Tickets for requests: none after the deadline or once max_requests were handed out."""

    def __init__(self, max_requests: int, deadline: float) -> None:
        self._left = max_requests
        self._deadline = deadline
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0 or time.monotonic() >= self._deadline:
                return False
            self._left -= 1
            return True


def _body(route: str, query: str) -> dict:
    if route == "answer":
        return {"question": query, "stream": True}
    return {"query": query}


def _request(client: httpx.Client, route: str, query: str) -> _Outcome:
    """One request, timed; never raises for what a server or the network can do."""
    started = time.perf_counter()

    def outcome(
        ok: bool, answered: bool, error: str | None = None, went_out: bool = True, provider: str | None = None
    ) -> _Outcome:
        return _Outcome(route, ok, answered, time.perf_counter() - started, error, went_out, provider)

    try:
        if route == "answer":
            return _read_stream(client, query, outcome)
        response = client.post(f"/{route}", json=_body(route, query))
        response.read()
        if response.status_code >= 400:
            return outcome(False, True, _status_error(response))
        return outcome(True, True)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
        return outcome(False, False, "connection", went_out=False)  # an error, not a lost request
    except httpx.TimeoutException:
        return outcome(False, False, "timeout")
    except httpx.TransportError:  # dropped mid-request or mid-response
        return outcome(False, False, "connection")


def _status_error(response: httpx.Response) -> str:
    """The error kind of a refusal: its status, and whether a 503 said when to come back."""
    if response.status_code == 503 and response.headers.get("retry-after"):
        return "HTTP 503 + Retry-After"
    return f"HTTP {response.status_code}"


def _provider_of(data: str) -> str | None:
    """The provider named by a ``final`` event's answer."""
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    answer = payload.get("response", payload) if isinstance(payload, dict) else None
    return answer.get("provider") if isinstance(answer, dict) else None


def _read_stream(client: httpx.Client, query: str, outcome: Callable[..., _Outcome]) -> _Outcome:
    from httpx_sse import EventSource

    with client.stream("POST", "/answer", json=_body("answer", query), headers={"Accept": "text/event-stream"}) as r:
        if r.status_code >= 400:
            r.read()
            return outcome(False, True, _status_error(r))
        final, provider = False, None
        for event in EventSource(r).iter_sse():
            if event.event == "error":
                for _ in r.iter_bytes():  # read to the end: the connection is reused
                    pass
                return outcome(False, True, "stream error")
            if event.event == "final":
                final, provider = True, _provider_of(event.data)
        return outcome(True, True, provider=provider) if final else outcome(False, False, "stream incomplete")


def _client_loop(
    n: int,
    url: str,
    headers: dict[str, str],
    timeout_s: float,
    budget: _Budget,
    routes: list[str],
    weights: list[float],
    queries: Sequence[str],
    sent: Counter,
    outcomes: list[_Outcome],
    lock: threading.Lock,
) -> None:
    rng = random.Random(1000 + n)  # reproducible route choices per client
    position = n * 7  # clients start at different queries
    # trust_env=False: no proxy from the environment (HTTP_PROXY) between a client and the loopback server
    with httpx.Client(base_url=url, headers=headers, timeout=timeout_s, trust_env=False) as client:
        while budget.take():
            route = rng.choices(routes, weights)[0]
            query = queries[position % len(queries)]
            position += 1
            with lock:
                sent[route] += 1
            result = _request(client, route, query)
            with lock:
                outcomes.append(result)


def _load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages (the bench shares the CPUs it measures)."""
    return [round(v, 2) for v in os.getloadavg()]


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def summarise(
    sent: Counter, outcomes: Sequence[_Outcome], started: float, elapsed_s: float, routes: Sequence[str]
) -> list[RouteLoad]:
    rows = []
    for route in routes:
        mine = [o for o in outcomes if o.route == route]
        latencies = sorted(o.latency_s for o in mine if o.ok)
        span = max((o.ended_at for o in mine), default=started + elapsed_s) - started
        answered = sum(o.answered for o in mine)
        rows.append(
            RouteLoad(
                route=route,
                sent=sent[route],
                answered=answered,
                ok=len(latencies),
                requests_per_s=round(len(latencies) / span, 2) if span > 0 else 0.0,
                p50_ms=_percentile(latencies, 50),
                p95_ms=_percentile(latencies, 95),
                p99_ms=_percentile(latencies, 99),
                errors=dict(Counter(o.error for o in mine if o.error)),
                # sent and never answered: unanswered outcomes that went out, and no outcome at all
                lost=sent[route] - answered - sum(not o.went_out for o in mine),
                providers=dict(Counter(o.provider or "?" for o in mine if o.ok)) if route == "answer" else {},
                span_s=round(span, 2),
            )
        )
    return rows


def server_health(url: str, headers: dict[str, str], timeout_s: float) -> dict:
    """/health of the target; LoadConfigError when nothing answers there."""
    try:
        response = httpx.get(f"{url}/health", headers=headers, timeout=timeout_s, trust_env=False)
    except httpx.TransportError as exc:
        raise LoadConfigError(
            f"no service answers at {url} ({type(exc).__name__}); start one with `cairn serve --port PORT`"
        ) from None
    if response.status_code == 401:
        raise LoadConfigError(f"{url}/health answered 401 ({response.text[:200]}): give a valid --api-key")
    try:
        return response.json()
    except ValueError:
        raise LoadConfigError(f"{url}/health did not answer JSON: is this a Cairn service?") from None


def run_load(
    url: str,
    clients: int = 20,
    duration_s: float = 60.0,
    mix: dict[str, float] | None = None,
    queries: Sequence[str] = (),
    queries_from: str = "",
    max_requests: int = 100_000,
    timeout_s: float = 30.0,
    api_key: str | None = None,
    label: str | None = None,
    warmup: bool = True,
) -> LoadBench:
    url = check_loopback(url)
    mix = mix or {"search": 1.0}
    if not queries:
        raise LoadConfigError("no queries to send")
    headers = {"X-API-Key": api_key} if api_key else {}
    health = server_health(url, headers, timeout_s)
    routes = list(mix)
    if warmup:  # the first request of each route may load or compile something: not measured
        with httpx.Client(base_url=url, headers=headers, timeout=timeout_s, trust_env=False) as client:
            for route in routes:
                first = _request(client, route, queries[0])
                if first.error:
                    raise LoadConfigError(f"warm-up request to /{route} failed ({first.error}): fix that first")

    sent: Counter = Counter()
    outcomes: list[_Outcome] = []
    lock = threading.Lock()
    load_before = _load_average()
    started = time.monotonic()
    budget = _Budget(max_requests, started + duration_s)
    threads = [
        threading.Thread(
            target=_client_loop,
            args=(n, url, headers, timeout_s, budget, routes, [mix[r] for r in routes], queries, sent, outcomes, lock),
            name=f"load-client-{n}",
            daemon=True,  # a thread stuck past its timeout must not keep the command alive
        )
        for n in range(clients)
    ]
    for thread in threads:
        thread.start()
    give_up = started + duration_s + timeout_s + _GRACE_S
    for thread in threads:
        thread.join(max(0.0, give_up - time.monotonic()))
    elapsed = time.monotonic() - started
    with lock:  # a stuck thread may still append: read one consistent snapshot
        sent_now, done = Counter(sent), list(outcomes)
    stuck = sum(thread.is_alive() for thread in threads)

    rows = summarise(sent_now, done, started, elapsed, routes)
    bench = LoadBench(
        url=url,
        clients=clients,
        duration_s=duration_s,
        elapsed_s=round(elapsed, 2),
        max_requests=max_requests,
        timeout_s=timeout_s,
        mix=mix,
        queries=len(queries),
        queries_from=queries_from,
        label=label,
        sent=sum(r.sent for r in rows),
        answered=sum(r.answered for r in rows),
        ok=sum(r.ok for r in rows),
        lost=sum(r.lost for r in rows),
        routes=rows,
        server={k: health.get(k) for k in ("status", "backend", "documents", "chunks", "models") if k in health},
        load_average={"before": load_before, "after": _load_average()},
    )
    if stuck:
        bench.notes.append(f"{stuck} client(s) still waiting after the run's time plus the timeout: counted lost")
    if any("HTTP 429" in r.errors for r in rows):
        bench.notes.append(
            "HTTP 429: the service's per-caller rate limit answered (every client here is one caller, or one "
            "address); to measure capacity, start the service with CAIRN_API_RATE_PER_S=0"
        )
    if sum(sent_now.values()) >= max_requests:
        bench.notes.append(f"stopped by the request budget ({max_requests}) before the time was up")
    return bench


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _errors_text(errors: dict[str, int]) -> str:
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(errors.items())) or "0"


def table_rows(bench: LoadBench) -> tuple[list[str], list[list[str]]]:
    headers = ["route", "sent", "ok", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "lost"]
    rows = [
        [
            f"/{r.route}",
            str(r.sent),
            str(r.ok),
            f"{r.requests_per_s:.1f}",
            _fmt(r.p50_ms),
            _fmt(r.p95_ms),
            _fmt(r.p99_ms),
            _errors_text(r.errors),
            str(r.lost),
        ]
        for r in bench.routes
    ]
    return headers, rows


def markdown(bench: LoadBench) -> str:
    server = bench.server
    index = (
        f"; index: {server.get('documents')} documents, {server.get('chunks')} chunks ({server.get('backend')})"
        if server
        else ""
    )
    mix = ",".join(f"{route}={weight:g}" for route, weight in bench.mix.items())
    rerank = (server.get("models") or {}).get("rerank")
    lines = [
        f"{bench.clients} clients for {bench.duration_s:g} s (ran {bench.elapsed_s:g} s, at most "
        f"{bench.max_requests:,} requests, timeout {bench.timeout_s:g} s) against `{bench.url}`{index}. "
        f"Mix {mix}; {bench.queries} queries from `{bench.queries_from}`, cycled."
        + (f" Reranker: {rerank}." if rerank else "")
        + (f" Label: {bench.label}." if bench.label else ""),
        "",
    ]
    if bench.service.get("description"):
        lines[-1:-1] = ["", bench.service["description"]]
    headers, rows = table_rows(bench)
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join("---" if h in ("route", "errors") else "---:" for h in headers) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        f"Sent {bench.sent}, answered {bench.answered}, successful {bench.ok}, errors {bench.errors}, "
        f"lost {bench.lost}. Latency percentiles over successful requests, client-side (request sent to "
        "response read; /answer: to the stream's final event).",
    ]
    answers = next((r.providers for r in bench.routes if r.route == "answer" and r.providers), None)
    if answers:
        written = ", ".join(f"{name} {count}" for name, count in sorted(answers.items(), key=lambda kv: -kv[1]))
        lines[-1] += f" Answers written by: {written}."
    if bench.load_average:
        before, after = (" / ".join(f"{v:g}" for v in bench.load_average.get(k, [])) for k in ("before", "after"))
        lines[-1] += f" Load average (1 / 5 / 15 min): {before} before, {after} after."
    lines += [f"- {note}" for note in bench.notes]
    return "\n".join(lines)


def as_dict(bench: LoadBench) -> dict:
    return asdict(bench) | {"errors": bench.errors}


def served_load(
    index,
    provider: str | None,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    **load: object,
) -> LoadBench:
    """`run_load` against a `cairn serve` the bench starts over ``index`` (a BuiltIndex) with
    ``provider``'s answer chain, stopped after the run; the service is described in the result."""
    from evals.load_service import started_service

    with started_service(index, provider, workdir, extra_env) as service:
        bench = run_load(service.url, **load)  # type: ignore[arg-type]
    bench.service = service.as_dict() | {"description": service.describe()}
    return bench


def save_bench(out: Path, bench: LoadBench, command: str) -> Path:
    """The run's section (load[-LABEL]) saved under ``out`` and the bench report rebuilt."""
    from evals.bench_report import rebuild, save_section

    name = f"load-{bench.label}" if bench.label else "load"
    title = "Load: concurrent clients" + (f" ({bench.label})" if bench.label else "")
    save_section(out, name, title, markdown(bench), as_dict(bench), command)
    return rebuild(out)


def print_bench(bench: LoadBench) -> None:
    from rich.console import Console
    from rich.table import Table

    headers, rows = table_rows(bench)
    shown = Table(title=f"{bench.clients} clients x {bench.elapsed_s:g} s on {bench.url}")
    for i, header in enumerate(headers):
        shown.add_column(header, justify="left" if i in (0, 7) else "right")
    for row in rows:
        shown.add_row(*row)
    console = Console()
    console.print(shown)
    answers = next((r.providers for r in bench.routes if r.route == "answer" and r.providers), {})
    console.print(
        f"sent {bench.sent}, answered {bench.answered}, successful {bench.ok}, "
        f"errors {bench.errors}, lost {bench.lost}"
        + (f"; answers by {', '.join(f'{k}: {v}' for k, v in answers.items())}" if answers else ""),
        highlight=False,
    )
    err = Console(stderr=True)
    for note in bench.notes:
        err.print(f"[yellow]{note}[/yellow]", highlight=False)


LABEL = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def register(bench_app) -> None:
    """`cairn bench load`, added to the evals part's `cairn bench` group."""

    import tempfile

    import typer
    from rich.console import Console

    from evals.load_service import BACKENDS, DEFAULT_CORPUS, PROVIDERS, ServiceStartError, build_index

    @bench_app.command("load")
    def bench_load_command(
        url: str = typer.Option(DEFAULT_URL, "--url", help="A running Cairn service on this machine (loopback only)."),
        serve: Optional[str] = typer.Option(
            None,
            "--serve",
            help=f"Instead of --url: build an index of --corpus on this backend ({', '.join(BACKENDS)}: the server "
            "backend through qdrant-client's local mode) and start `cairn serve` over it for the run.",
        ),
        corpus: Path = typer.Option(DEFAULT_CORPUS, "--corpus", help="The folder --serve indexes."),
        provider: Optional[str] = typer.Option(
            None,
            "--provider",
            help=f"With --serve: the answers' provider ({', '.join(PROVIDERS)}: a fast fake OpenAI-compatible "
            "server on loopback), backed by extractive (default: the environment's CAIRN_LLM_PROVIDERS).",
        ),
        clients: int = typer.Option(20, "--clients", min=1, max=500, help="Concurrent clients."),
        duration: float = typer.Option(60.0, "--duration", min=1.0, max=3600.0, help="Seconds to send requests."),
        max_requests: int = typer.Option(100_000, "--max-requests", min=1, help="Stop after this many requests."),
        mix: str = typer.Option(
            "search=1",
            "--mix",
            help="Route weights, e.g. search=1,context=0,answer=0 (answer: streamed, read to the end).",
        ),
        queries: Optional[Path] = typer.Option(
            None, "--queries", help=f'JSONL of {{"id", "text"}} (default: the questions of {DEFAULT_QUESTIONS}).'
        ),
        timeout: float = typer.Option(
            30.0, "--timeout", min=0.1, help="Seconds of silence from the server before a request times out."
        ),
        api_key: Optional[str] = typer.Option(
            None, "--api-key", envvar="CAIRN_API_KEY", help="Sent as X-API-Key (default: anonymous)."
        ),
        label: Optional[str] = typer.Option(
            None, "--label", help="Names this run: its section is saved as load-LABEL (default: load)."
        ),
        out: Path = typer.Option(Path("evals/reports/bench"), "--out", help="Bench report folder."),
    ) -> None:
        """Concurrent clients against a service: requests/s, p50/p95/p99, errors by kind, lost requests."""
        err = Console(stderr=True)
        try:
            texts, source = load_queries(queries)
            weights = parse_mix(mix)
            target = check_loopback(url)
            if label is not None and not LABEL.fullmatch(label):
                raise LoadConfigError(f"--label {label!r}: letters, digits, '.', '_' or '-' only (at most 40)")
            if serve is None and provider is not None:
                raise LoadConfigError("--provider chooses the answers of a service the bench starts: give --serve too")
            if serve is not None:
                if url != DEFAULT_URL:
                    raise LoadConfigError("give --url (a running service) or --serve (one the bench starts), not both")
                if serve not in BACKENDS:
                    raise LoadConfigError(f"--serve {serve!r}: choose one of {', '.join(BACKENDS)}")
                if provider is not None and provider not in PROVIDERS:
                    raise LoadConfigError(f"--provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
            load = dict(
                clients=clients,
                duration_s=duration,
                mix=weights,
                queries=texts,
                queries_from=source,
                max_requests=max_requests,
                timeout_s=timeout,
                api_key=api_key,
                label=label,
            )
            if serve is None:
                with err.status(f"{clients} clients on {target} for {duration:g} s..."):
                    bench = run_load(target, **load)  # type: ignore[arg-type]
            else:
                with tempfile.TemporaryDirectory(prefix="cairn-load-") as work:
                    with err.status(f"indexing {corpus} on the {serve} backend..."):
                        index = build_index(corpus, serve, Path(work))  # type: ignore[arg-type]
                    with err.status(f"starting `cairn serve`, then {clients} clients for {duration:g} s..."):
                        bench = served_load(index, provider, Path(work), **load)
        except (LoadConfigError, ServiceStartError) as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2)  # cairn's ExitCode.USAGE (evals sit below cairn: no import of it)

        print_bench(bench)
        command = ["cairn bench load"]
        if serve is None:
            command += ["--url", bench.url]
        else:
            command += ["--serve", serve] + (["--corpus", str(corpus)] if corpus != DEFAULT_CORPUS else [])
            command += ["--provider", provider] if provider else []
        command += ["--clients", str(clients), "--duration", f"{duration:g}"]
        command += ["--mix", ",".join(f"{r}={w:g}" for r, w in weights.items())]
        if max_requests != 100_000:
            command += ["--max-requests", str(max_requests)]
        if queries:
            command += ["--queries", str(queries)]
        if timeout != 30.0:
            command += ["--timeout", f"{timeout:g}"]
        if api_key:
            command += ["--api-key", "KEY"]  # never written to the report
        if label:
            command += ["--label", label]
        Console().print(f"report: {save_bench(out, bench, ' '.join(command))}")

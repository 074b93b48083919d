"""A Cairn service for a load run, started by the bench itself: an index built from a corpus on the
chosen backend, then `cairn serve` over it in its own process on a free loopback port, with the
chosen answer provider (the local model, a fast fake OpenAI-compatible server, or extractive).

Backends: ``embedded`` (the Qdrant Edge engine under a data folder) and ``server-local`` (the
server backend's client, ``ServerStore``, over qdrant-client's local mode: the server API without
a server binary). Both indexes are built by the same ingest pipeline from the same corpus.

The started service measures capacity, not its guards: the per-caller rate limit is off (every
bench client shares one address), and the answer cache and the answer router are off (each answer
goes to its provider, none is served from the cache or routed away as uncovered).
It ignores the environment's QDRANT_URL, identities file and watched folders; everything else
(reranker, models, answers admitted at once...) comes from the environment as for `cairn serve`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import httpx

from evals.fake_openai import FakeOpenAIServer

Backend = Literal["embedded", "server-local"]
Provider = Literal["extractive", "local", "fake-openai"]
BACKENDS: tuple[Backend, ...] = ("embedded", "server-local")
PROVIDERS: tuple[Provider, ...] = ("extractive", "local", "fake-openai")
COLLECTION = "load"
DEFAULT_CORPUS = Path("data/sample")
_CHAINS: dict[str, list[str]] = {
    "extractive": ["extractive"],
    "local": ["local", "extractive"],
    "fake-openai": ["openai", "extractive"],
}
# What the served process must not take from the bench's environment: another index, callers
# that need keys, folders it would start ingesting.
_NOT_INHERITED = (
    "QDRANT_URL",
    "CAIRN_QDRANT_URL",
    "QDRANT_API_KEY",
    "CAIRN_QDRANT_API_KEY",
    "CAIRN_IDENTITIES_FILE",
    "CAIRN_WATCH_SOURCES",
    "CAIRN_API_URL",
    "CAIRN_OPENAI_API_KEY",
)
_STOP_WAIT_S = 30.0
_CAPACITY = {"CAIRN_API_RATE_PER_S", "CAIRN_ANSWER_CACHE_ENABLED", "CAIRN_ANSWER_ROUTER_ENABLED"}


class ServiceStartError(RuntimeError):
    """The service could not be built or started: the message says why and what to look at."""


@dataclass
class BuiltIndex:
    backend: Backend
    corpus: str
    data_dir: Path  # CAIRN_DATA_DIR of the served process
    qdrant_path: Path | None  # server-local: qdrant-client's local-mode folder
    files: int
    chunks: int
    failed: int
    seconds: float


def build_index(corpus: Path, backend: Backend, folder: Path, settings=None, encoders=None) -> BuiltIndex:
    """``corpus`` indexed into ``folder`` on ``backend`` by the ingest pipeline (settings: the
    environment's, with this folder and collection; encoders: loaded from them unless given)."""
    from qdrant_client import QdrantClient

    from ingest.pipeline import IngestPipeline
    from retrieval.encoders import build_encoders
    from retrieval.settings import Settings
    from retrieval.store.edge import EdgeStore
    from retrieval.store.server import ServerStore

    if backend not in BACKENDS:
        raise ServiceStartError(f"backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    corpus = Path(corpus)
    if not corpus.is_dir():
        raise ServiceStartError(f"--corpus {corpus}: not a folder of documents")
    folder = Path(folder)
    data_dir = folder / ("index" if backend == "embedded" else "data")
    qdrant_path = folder / "qdrant" if backend == "server-local" else None
    data_dir.mkdir(parents=True, exist_ok=True)
    base = settings if settings is not None else Settings()
    local = base.model_copy(update={"data_dir": data_dir, "collection": COLLECTION, "qdrant_url": None})
    dense, sparse = encoders if encoders is not None else build_encoders(local.models)
    if qdrant_path is not None:
        qdrant_path.mkdir(parents=True, exist_ok=True)
        store = ServerStore(QdrantClient(path=str(qdrant_path)))
    else:
        store = EdgeStore(data_dir)
    pipeline = IngestPipeline(local, store, dense, sparse)
    try:
        report = pipeline.run(corpus, source=corpus.resolve().name, delete_missing=True)
    finally:
        pipeline.close()
        store.close()  # the served process opens it next (local mode and Edge lock their folder)
    files = report.files.added + report.files.updated + report.files.unchanged
    if report.chunks.total == 0:
        raise ServiceStartError(f"{corpus}: nothing was indexed ({len(report.failures)} files failed)")
    return BuiltIndex(
        backend,
        str(corpus),
        data_dir,
        qdrant_path,
        files,
        report.chunks.total,
        len(report.failures),
        round(report.seconds, 1),
    )


@dataclass
class StartedService:
    url: str
    backend: Backend
    provider: Provider | None  # None: the environment's provider chain
    providers: list[str]  # the chain the service was started with
    corpus: str
    files: int
    chunks: int
    build_s: float
    startup_s: float
    environment: dict[str, str] = field(default_factory=dict)  # what the bench set (secrets never)
    log: str = ""  # the service's log file

    def describe(self) -> str:
        store = (
            "the server backend (ServerStore) through qdrant-client's local mode"
            if self.backend == "server-local"
            else "the embedded engine (Qdrant Edge)"
        )
        chain = " -> ".join(("openai (a fast fake on loopback)" if p == "openai" else p) for p in self.providers)
        return (
            f"Service started by the bench: `cairn serve` on {store}, over an index of `{self.corpus}` "
            f"({self.files} files, {self.chunks} chunks, built in {self.build_s:g} s; service up in "
            f"{self.startup_s:g} s); answers: {chain}; rate limit, answer cache and router off."
        )

    def as_dict(self) -> dict:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(index: BuiltIndex, provider: Provider | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The served process's environment: the bench's, less what would point it elsewhere, plus the
    index, the provider chain and capacity settings; ``extra`` last (e.g. CAIRN_RERANKER)."""
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env.update(
        CAIRN_DATA_DIR=str(index.data_dir),
        CAIRN_COLLECTION=COLLECTION,
        CAIRN_API_RATE_PER_S="0",
        CAIRN_ANSWER_CACHE_ENABLED="false",
        CAIRN_ANSWER_ROUTER_ENABLED="false",
        OMP_WAIT_POLICY="PASSIVE",
    )
    no_proxy = [p for p in (env.get("NO_PROXY") or "").split(",") if p]
    env["NO_PROXY"] = ",".join(dict.fromkeys(no_proxy + ["127.0.0.1", "localhost", "::1"]))
    if provider is not None:
        if provider not in PROVIDERS:
            raise ServiceStartError(f"--provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
        env["CAIRN_LLM_PROVIDERS"] = json.dumps(_CHAINS[provider])
    env.update(extra or {})
    return env


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceStartError(
                f"`cairn serve` exited with code {process.returncode} before answering; its log ({log}):\n"
                + log_tail(log)
            )
        try:
            response = httpx.get(f"{url}/health", timeout=5, trust_env=False)
            if response.status_code == 200 and response.json().get("status") == "ok":
                return
        except (httpx.TransportError, ValueError):
            pass
        time.sleep(0.5)
    raise ServiceStartError(
        f"`cairn serve` did not answer /health within {timeout_s:g} s; its log ({log}):\n" + log_tail(log)
    )


def stop_process(process: subprocess.Popen) -> None:
    """Ctrl-C for a served process (`cairn serve`, `cairn ui`), killed if it has not stopped in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # uvicorn shuts down and the runtime closes the index
        try:
            process.wait(_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def started_service(
    index: BuiltIndex,
    provider: Provider | None,
    workdir: Path,
    extra_env: dict[str, str] | None = None,
    startup_timeout_s: float = 300.0,
) -> Iterator[StartedService]:
    """`cairn serve` over ``index`` (and the fake provider, for ``fake-openai``), stopped on exit."""
    with ExitStack() as stack:
        extra = dict(extra_env or {})
        if provider == "fake-openai":
            fake = stack.enter_context(FakeOpenAIServer())
            extra.setdefault("CAIRN_OPENAI_BASE_URL", fake.url)
        env = service_env(index, provider, extra)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "cairn", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if index.qdrant_path is not None:
            command += ["--qdrant-local", str(index.qdrant_path)]
        log = Path(workdir) / f"serve-{port}.log"
        started = time.monotonic()
        with open(log, "wb") as log_file:
            process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        stack.callback(stop_process, process)
        _wait_healthy(url, process, log, startup_timeout_s)
        chain = json.loads(env["CAIRN_LLM_PROVIDERS"]) if "CAIRN_LLM_PROVIDERS" in env else ["(environment)"]
        shown = {k: env[k] for k in sorted(set(extra) | _CAPACITY)}
        yield StartedService(
            url=url,
            backend=index.backend,
            provider=provider,
            providers=chain,
            corpus=index.corpus,
            files=index.files,
            chunks=index.chunks,
            build_s=index.seconds,
            startup_s=round(time.monotonic() - started, 1),
            environment={k: v for k, v in shown.items() if "KEY" not in k},
            log=str(log),
        )

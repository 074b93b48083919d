"""What `cairn serve` sets up around the HTTP app: the runtime's ingest jobs behind the ingest
routes, ``serving.json`` next to an embedded index (so `cairn ingest` hands its jobs here instead
of failing on the lock), and the watched sources (CAIRN_WATCH_SOURCES)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from fastapi import FastAPI

if TYPE_CHECKING:
    from runtime import Runtime


def local_url(host: str, port: int) -> str:
    """Where a process on this machine reaches a server listening on ``host``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def serving(app: FastAPI, runtime: Runtime, host: str, port: int) -> Iterator[None]:
    """Around the server's run; the runtime's close (after it) withdraws serving.json."""
    from cairn.commands.opening import fail
    from cairn.exit_codes import ExitCode

    app.state.ingest_jobs = runtime.ingest_jobs
    runtime.announce("api", local_url(host, port))
    runtime.fill_rerank_vectors()
    try:
        runtime.watch()
    except (NotADirectoryError, ValueError) as exc:  # a missing folder, a source name taken by uploads
        raise fail(f"CAIRN_WATCH_SOURCES: {exc}", ExitCode.USAGE) from None
    yield

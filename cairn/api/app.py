"""The HTTP API (FastAPI): one app, built by `create_app` from the runtime's services, with the
search and answer routes behind API keys. `cairn serve` runs it."""

from __future__ import annotations

from typing import Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from answers.service import AnswerService
from cairn.api import answer_routes, search_routes
from retrieval.access import Identities
from retrieval.service import SearchService
from retrieval.store import StoreError


def create_app(
    service: SearchService,
    identities: Identities,
    routers: Sequence[APIRouter] = (),
    answers: AnswerService | None = None,
) -> FastAPI:
    """``answers``: the runtime's AnswerService (None: built over ``service`` on first use);
    ``routers``: extra routes (tests add their own)."""
    app = FastAPI(
        title="Cairn",
        summary="Hybrid search, selective context and cited answers over your documents.",
        version="0.1.0",
    )
    app.state.service = service
    app.state.identities = identities
    app.state.answers = answers

    # No index yet, a locked folder, an unreachable server: the message says what to do.
    @app.exception_handler(StoreError)
    def _store_down(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    app.include_router(search_routes.router)
    app.include_router(answer_routes.router)
    for router in routers:
        app.include_router(router)
    return app

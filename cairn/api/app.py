"""The HTTP API (FastAPI): one app, built by `create_app` from the runtime's services, with the
search and answer routes behind API keys. `cairn serve` runs it."""

from __future__ import annotations

from typing import Sequence

from fastapi import APIRouter, FastAPI
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from answers.service import AnswerService
from cairn.api import answer_routes, ingest_routes, metrics_routes, search_routes
from cairn.api.errors import RequestIds, install_error_handlers
from cairn.api.limits import AnswerSlots, ApiLimits, RateLimit
from cairn.api.metrics import ApiMetrics, RequestMetrics
from retrieval.access import Identities
from retrieval.service import SearchService


def create_app(
    service: SearchService,
    identities: Identities,
    routers: Sequence[APIRouter] = (),
    answers: AnswerService | None = None,
    limits: ApiLimits | None = None,
) -> FastAPI:
    """``answers``: the runtime's AnswerService (None: built over ``service`` on first use);
    ``routers``: extra routes (tests add their own); ``limits``: None takes the service's
    settings (CAIRN_API_MAX_BODY_BYTES, CAIRN_API_RATE_PER_S, CAIRN_API_RATE_BURST)."""
    settings = getattr(service, "settings", None)
    if limits is None:
        limits = ApiLimits.from_settings(settings.service) if settings is not None else ApiLimits()
    app = FastAPI(
        title="Cairn",
        summary="Hybrid search, selective context and cited answers over your documents.",
        version="0.1.0",
    )
    app.state.service = service
    app.state.identities = identities
    app.state.answers = answers
    app.state.answer_slots = AnswerSlots(limits.max_answers)
    app.state.limits = limits

    metrics = ApiMetrics(service, app.state)
    app.state.metrics = metrics

    install_error_handlers(app)
    # The last added runs first: every response, a 413 or a 429 included, carries its request id.
    # The body limit is Starlette's: a route reads (and so counts) its body before parsing it or
    # resolving the caller's key; a route taking files raises it with its own `max_body_size`.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=limits.max_body_bytes)
    app.add_middleware(RateLimit, limits=limits)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(RequestIds)

    app.include_router(search_routes.router)
    app.include_router(answer_routes.router)
    app.include_router(ingest_routes.router)  # the live index: administrators only
    app.include_router(metrics_routes.router)
    for router in routers:
        app.include_router(router)
    return app

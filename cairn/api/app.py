"""The HTTP API (FastAPI): search, context, health and documents, behind API keys.

Other parts add their routes by passing routers to `create_app`; their endpoints get the
service and the caller's identity through the `current_service` and `current_identity`
dependencies below.
"""

from __future__ import annotations

from typing import Annotated, Sequence

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Request,
    Response,
    status,
)
from fastapi.responses import JSONResponse

from retrieval.access import AuthError, Identities, Identity
from retrieval.search_schemas import (
    ContextRequest,
    ContextResponse,
    DocumentsResponse,
    HealthResponse,
    SearchRequest,
    SearchResponse,
)
from retrieval.service import SearchService
from retrieval.store import StoreError


def _api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer KEY'")
        return token.strip()
    return None


def current_service(request: Request) -> SearchService:
    return request.app.state.service


def current_identity(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(description="API key (or send 'Authorization: Bearer KEY')")] = None,
) -> Identity:
    identities: Identities = request.app.state.identities
    try:
        return identities.resolve(_api_key(authorization, x_api_key))
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


ServiceDep = Annotated[SearchService, Depends(current_service)]
IdentityDep = Annotated[Identity, Depends(current_identity)]


def create_app(service: SearchService, identities: Identities, routers: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="Cairn",
        summary="Hybrid search, selective context and cited answers over your documents.",
        version="0.1.0",
    )
    app.state.service = service
    app.state.identities = identities

    # No index yet, a locked folder, an unreachable server: the message says what to do.
    @app.exception_handler(StoreError)
    def _store_down(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.post("/search", response_model=SearchResponse, tags=["search"])
    def search(body: SearchRequest, svc: ServiceDep, identity: IdentityDep) -> SearchResponse:
        """Hybrid search (dense + BM25 fused inside Qdrant), reranked when a reranker is available."""
        return svc.search(body, identity)

    @app.post("/context", response_model=ContextResponse, tags=["search"])
    def context(body: ContextRequest, svc: ServiceDep, identity: IdentityDep) -> ContextResponse:
        """Search, then the numbered context blocks an answer would cite, within a token budget."""
        return svc.context(body, identity)

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    def health(svc: ServiceDep, identity: IdentityDep, response: Response) -> HealthResponse:
        """Index reachable, models loaded, and the documents and chunks the caller may see (503 when degraded)."""
        report = svc.health(identity)
        if report.status != "ok":
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return report

    @app.get("/documents", response_model=DocumentsResponse, tags=["service"])
    def documents(svc: ServiceDep, identity: IdentityDep) -> DocumentsResponse:
        """The indexed documents the caller may see."""
        return DocumentsResponse(documents=svc.documents(identity))

    for router in routers:
        app.include_router(router)
    return app

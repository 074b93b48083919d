"""`/search`, `/context`, `/health` and `/documents`: thin routes over the SearchService."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from cairn.api.dependencies import IdentityDep, ServiceDep
from cairn.api.errors import log, request_id
from cairn.api.metrics import log_request
from retrieval.search_schemas import (
    ContextRequest,
    ContextResponse,
    DocumentsResponse,
    HealthResponse,
    SearchRequest,
    SearchResponse,
)

router = APIRouter()


@router.post("/search", response_model=SearchResponse, tags=["search"])
def search(body: SearchRequest, svc: ServiceDep, identity: IdentityDep, request: Request) -> SearchResponse:
    """Hybrid search (dense + BM25 fused inside Qdrant), reranked when a reranker is available."""
    response = svc.search(body, identity)
    _observe(request, identity.user, "/search", response)
    return response


@router.post("/context", response_model=ContextResponse, tags=["search"])
def context(body: ContextRequest, svc: ServiceDep, identity: IdentityDep, request: Request) -> ContextResponse:
    """Search, then the numbered context blocks an answer would cite, within a token budget."""
    response = svc.context(body, identity)
    _observe(request, identity.user, "/context", response)
    return response


def _observe(request: Request, user: str, route: str, response: SearchResponse) -> None:
    request.app.state.metrics.observe_search(response.timings_ms)
    log_request(request_id(request), user, route, response.timings_ms, [h.doc_id for h in response.hits])


@router.get("/health", response_model=HealthResponse, tags=["service"])
def health(svc: ServiceDep, identity: IdentityDep, request: Request, response: Response) -> HealthResponse:
    """Index reachable, models loaded, and the documents and chunks the caller may see (503 when degraded)."""
    report = svc.health(identity)
    if report.status != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    if report.problem:  # it names the index's path or the Qdrant URL: for the log only
        rid = request_id(request)
        log.warning("request %s: GET /health: degraded: %s", rid, report.problem)
        problem = f"the index is unreachable; the operator finds why in the server log under request id {rid}"
        report = report.model_copy(update={"problem": problem})
    return report


@router.get("/documents", response_model=DocumentsResponse, tags=["service"])
def documents(svc: ServiceDep, identity: IdentityDep) -> DocumentsResponse:
    """The indexed documents the caller may see."""
    return DocumentsResponse(documents=svc.documents(identity))

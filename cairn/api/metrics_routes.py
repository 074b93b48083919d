"""`GET /metrics`: Prometheus' text format (see cairn/api/metrics.py for what is counted and why
it is served here, behind an administrator's key when identities are configured)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cairn.api.dependencies import IdentityDep

router = APIRouter(tags=["service"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request, identity: IdentityDep) -> Response:
    """Request, stage, cache, answer, ingest and index metrics (administrators, when keys are configured)."""
    if request.app.state.identities.keys_configured and not identity.admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"'{identity.user}' is not an administrator: metrics show whole-index numbers "
            "(ask whoever runs Cairn to mark your user `admin: true` in CAIRN_IDENTITIES_FILE)",
        )
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""What every route is given: the services of the app's runtime and the caller's identity."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from answers.service import AnswerService
from retrieval.access import AuthError, Identities, Identity
from retrieval.service import SearchService

_building = threading.Lock()


def api_key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key a request presents (X-API-Key, or 'Authorization: Bearer KEY'); None: no key."""
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


def current_answers(request: Request) -> AnswerService:
    """The app's AnswerService; built over its SearchService on first use when the app was
    created without one (models load once)."""
    state = request.app.state
    with _building:
        if getattr(state, "answers", None) is None:
            state.answers = AnswerService(state.service, state.service.settings.answers)
    return state.answers


def current_identity(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(description="API key (or send 'Authorization: Bearer KEY')")] = None,
) -> Identity:
    identities: Identities = request.app.state.identities
    try:
        return identities.resolve(api_key_from_headers(authorization, x_api_key))
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


ServiceDep = Annotated[SearchService, Depends(current_service)]
AnswersDep = Annotated[AnswerService, Depends(current_answers)]
IdentityDep = Annotated[Identity, Depends(current_identity)]

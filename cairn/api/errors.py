"""What a caller is told when a request fails: what to do, and a request id. What went wrong
(index paths, the Qdrant URL, an engine's or a provider's own words) goes to the server log
under that id, never into a response: callers include anonymous ones.

Every response carries its id in ``X-Request-ID``; every error body has it as ``request_id``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.utils import is_body_allowed_for_status_code
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retrieval.store import CollectionMissingError, IncompatibleIndexError, IndexLockedError, StoreError

log = logging.getLogger("cairn.api")

REQUEST_ID_HEADER = "X-Request-ID"


def request_id(scope_or_request: Scope | Request) -> str:
    """The id `RequestIds` gave this request ("-" outside it)."""
    scope = scope_or_request.scope if isinstance(scope_or_request, Request) else scope_or_request
    return scope.get("state", {}).get("request_id", "-")


def _ask_operator(rid: str) -> str:
    return f"if it persists, give the operator request id {rid}"


def caller_message(exc: BaseException, rid: str) -> str:
    """What the caller can do about ``exc``, without its text."""
    if isinstance(exc, CollectionMissingError):
        return f"no index has been built yet: the operator runs `cairn ingest FOLDER` first (request id {rid})"
    if isinstance(exc, IndexLockedError):
        return f"the index is busy in another process; try again in a minute, and {_ask_operator(rid)}"
    if isinstance(exc, IncompatibleIndexError):
        return f"the index was built for other models: the operator must re-index (request id {rid})"
    if isinstance(exc, StoreError):
        return f"the index is unavailable; try again later, and {_ask_operator(rid)}"
    return f"the service failed on this request; try again, and {_ask_operator(rid)}"


def log_failure(rid: str, what: str, exc: BaseException) -> None:
    """The details of a failure, under the id the caller was given."""
    level = logging.WARNING if isinstance(exc, StoreError) else logging.ERROR
    log.log(level, "request %s: %s: %s: %s", rid, what, type(exc).__name__, exc, exc_info=exc)


def error_response(status: int, detail: Any, rid: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "request_id": rid}, status_code=status, headers=headers)


def _where(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def install_error_handlers(app: FastAPI) -> None:
    """Error bodies with the request id; store failures as 503 with what to do."""

    @app.exception_handler(StoreError)
    def _store_down(request: Request, exc: StoreError) -> JSONResponse:
        rid = request_id(request)
        log_failure(rid, _where(request), exc)
        return error_response(503, caller_message(exc, rid), rid)

    # Our own messages (401, 422 for a provider, 404): they name no internals; add the id.
    @app.exception_handler(HTTPException)
    def _http_error(request: Request, exc: HTTPException) -> Response:
        if not is_body_allowed_for_status_code(exc.status_code):
            return Response(status_code=exc.status_code, headers=exc.headers)
        detail = exc.detail
        if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's own words
            detail = "the request body is not JSON text (UTF-8): send a JSON object with Content-Type: application/json"
        if exc.status_code == 413:  # Starlette's body limit, as a chunked body is read
            limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            detail = f"the request body is larger than the {limit} bytes this route accepts; send a smaller one"
        return error_response(exc.status_code, detail, request_id(request), exc.headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, jsonable_encoder(exc.errors()), request_id(request))


class RequestIds:
    """Gives each HTTP request an id of its own (a caller's ``X-Request-ID`` is not taken: it
    would let one caller's requests pose as another's in the log), sends it back on every
    response, and answers an exception no handler took with a 500 naming only the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log_failure(rid, f"{scope.get('method')} {scope.get('path')}", exc)
            if started:  # the status is sent: the server can only cut the response short
                raise
            await error_response(500, caller_message(exc, rid), rid)(scope, receive, send_with_id)

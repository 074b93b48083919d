"""`POST /answer`: one JSON AnswerResponse, or Server-Sent Events when the body says
``"stream": true`` or the client sends ``Accept: text/event-stream``.

SSE events, in order: ``context`` (the blocks, the rewritten query), ``token`` (as generated),
``reset`` (a provider failed mid-answer: discard its tokens), ``final`` (the AnswerResponse);
``error`` replaces ``final`` when retrieval itself fails. Each ``data:`` line is one JSON object.
Access rules are those of /search: the same identity dependency, the same per-group filter.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import StreamingResponse

from retrieval.access import Identity
from answers.schemas import AnswerEvent, AnswerRequest, AnswerResponse
from answers.service import AnswerService, final_response
from cairn.api.app import current_identity

router = APIRouter(tags=["answers"])
_building = threading.Lock()


def current_answers(request: Request) -> AnswerService:
    """One AnswerService per app, over the app's SearchService (models load once)."""
    state = request.app.state
    with _building:
        if getattr(state, "answers", None) is None:
            state.answers = AnswerService(state.service, state.service.settings)
    return state.answers


def _sse(events: Iterator[AnswerEvent]) -> Iterator[str]:
    try:
        for event in events:
            yield f"event: {event.type}\ndata: {event.model_dump_json()}\n\n"
    except Exception as exc:  # headers are sent: the error can only travel as an event
        yield f"event: error\ndata: {json.dumps({'detail': str(exc)})}\n\n"


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE"}},
)
def answer(
    body: AnswerRequest,
    request: Request,
    answers: Annotated[AnswerService, Depends(current_answers)],
    identity: Annotated[Identity, Depends(current_identity)],
):
    """A cited answer from the caller's documents: [n] marks resolve to `citations`."""
    try:
        answers.chain(body.provider)  # an unknown provider is the caller's error, before any work
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    events = answers.stream(
        body.question,
        identity,
        history=body.history,
        provider=body.provider,
        filters=body.filters,
        top_k=body.top_k,
        fusion=body.fusion,
        rerank=body.rerank,
    )
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(
            _sse(events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return final_response(events)

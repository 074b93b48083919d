"""`POST /answer`: one JSON AnswerResponse, or Server-Sent Events when the body says
``"stream": true`` or the client sends ``Accept: text/event-stream``.

SSE events, in order: ``context`` (the blocks, the rewritten query), ``token`` (as generated),
``reset`` (a provider failed mid-answer: discard its tokens), ``final`` (the AnswerResponse);
``error`` replaces ``final`` when retrieval itself fails: ``{"detail", "request_id"}``, what to do
and the id the server log files the failure under. Each ``data:`` line is one JSON object.
Access rules are those of /search: the same identity dependency, the same per-group filter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException, Request, status
from sse_starlette import EventSourceResponse

from answers.schemas import AnswerEvent, AnswerRequest, AnswerResponse, FinalEvent
from answers.service import final_response
from cairn.api.dependencies import AnswersDep, IdentityDep
from cairn.api.errors import caller_message, log_failure, request_id
from cairn.api.metrics import log_request

router = APIRouter(tags=["answers"])


def _observed(events: Iterator[AnswerEvent], request: Request, user: str) -> Iterator[AnswerEvent]:
    """The events as they are, the final answer counted and logged on the way."""
    for event in events:
        if isinstance(event, FinalEvent):
            response = event.response
            request.app.state.metrics.observe_answer(response)
            cache = getattr(response, "cache", None)
            cited = {c.n for c in response.citations}
            log_request(
                request_id(request), user, "/answer", response.timings_ms, [b.doc_id for b in response.context],
                [b.doc_id for b in response.context if b.n in cited],
                provider=response.provider, cache=cache.outcome if cache else None,
            )
        yield event


def _released(events: Iterator[AnswerEvent], slots) -> Iterator[AnswerEvent]:
    """The events; the answer's slot is given back when they end, however they end."""
    try:
        yield from events
    finally:
        slots.give_back()


def _sse(events: Iterator[AnswerEvent], rid: str) -> Iterator[dict[str, str]]:
    try:
        for event in events:
            yield {"event": event.type, "data": event.model_dump_json()}
    except Exception as exc:  # headers are sent: the error can only travel as an event
        log_failure(rid, "POST /answer (stream)", exc)
        yield {"event": "error", "data": json.dumps({"detail": caller_message(exc, rid), "request_id": rid})}


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE"},
        503: {"description": "as many answers are in flight as the service admits: ask again after Retry-After"},
    },
)
def answer(
    body: AnswerRequest,
    request: Request,
    answers: AnswersDep,
    identity: IdentityDep,
):
    """A cited answer from the caller's documents: [n] marks resolve to `citations`."""
    try:
        answers.chain(body.provider)  # an unknown provider is the caller's error, before any work
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    slots = request.app.state.answer_slots
    if not slots.try_take():
        retry = request.app.state.limits.answer_retry_after_s
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the service is answering as many questions as it can; ask again in about {retry} s "
            "(searches are not affected)",
            headers={"Retry-After": str(retry)},
        )
    events = _released(_observed(answers.stream(body, identity), request, identity.user), slots)
    if body.stream or "text/event-stream" in request.headers.get("accept", ""):
        return EventSourceResponse(_sse(events, request_id(request)), headers={"X-Accel-Buffering": "no"}, sep="\n")
    try:
        return final_response(events)
    finally:
        events.close()  # gives the slot back now, not when the generator is collected

"""The conversation the page keeps in `st.session_state`: one `Turn` per question, filled from
a client's event stream while the answer is shown."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from answers.schemas import AnswerResponse, ChatTurn, ContextEvent, FinalEvent, ResetEvent
from app.client import MAX_HISTORY_TURNS, ChatEvent
from retrieval.search_schemas import ContextResponse


@dataclass
class Turn:
    question: str
    response: AnswerResponse | None = None
    retrieval: ContextResponse | None = None
    rewritten_query: str | None = None
    resets: list[str] = field(default_factory=list)  # providers that failed mid-answer, and why
    error: str | None = None  # what went wrong instead of an answer, in plain words


def history_of(turns: Sequence[Turn]) -> list[ChatTurn]:
    """The earlier questions and answers a follow-up is read against (failed turns left out)."""
    history: list[ChatTurn] = []
    for turn in turns:
        if turn.response is not None:
            history.append(ChatTurn(role="user", content=turn.question))
            history.append(ChatTurn(role="assistant", content=turn.response.answer))
    return history[-MAX_HISTORY_TURNS:]


def record(turn: Turn, events: Iterator[ChatEvent]) -> Iterator[ChatEvent]:
    """Each event of a client's stream, passed on after what it says is kept in ``turn``."""
    for event in events:
        if isinstance(event, ResetEvent):
            turn.resets.append(f"{event.provider}: {event.error}")
        elif isinstance(event, ContextEvent):
            turn.rewritten_query = event.rewritten_query
            turn.retrieval = event.retrieval
        elif isinstance(event, FinalEvent):
            turn.response = event.response
        yield event

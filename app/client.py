"""The one client the chat page talks to, with two implementations: the retrieval and answer
services in this process over the embedded index (the default), or the HTTP API when
``CAIRN_API_URL`` is set. The page holds no search logic: it shows what a client returns.

Errors a person can act on arrive as `ClientError`, whose message says what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import httpx
from httpx_sse import connect_sse
from pydantic import BaseModel, TypeAdapter, ValidationError

from answers.schemas import (
    AnswerEvent,
    AnswerRequest,
    ContextEvent,
    FinalEvent,
    ResetEvent,
    TokenEvent,
)
from app.client_error import ClientError
from app.documents_admin import DocumentsAdmin, LocalDocumentsAdmin, ServiceDocumentsAdmin
from retrieval.access import ANONYMOUS_USER, Identities, IdentitiesFileError, Identity
from retrieval.search_schemas import (
    DocumentInfo,
    DocumentsResponse,
    HealthResponse,
    SearchRequest,
    SearchResponse,
)
from retrieval.settings import Settings
from retrieval.store import StoreError

if TYPE_CHECKING:  # imported when used: an HTTP-only page never loads torch
    from answers.service import AnswerService
    from ingest.jobs import IngestJobs
    from retrieval.service import SearchService

# AnswerRequest accepts at most 50 earlier turns; the last few carry a conversation's topic.
MAX_HISTORY_TURNS = 20


ChatEvent = ContextEvent | TokenEvent | ResetEvent | FinalEvent


class CairnClient(Protocol):
    description: str  # where answers come from, in words, for the sidebar

    def users(self) -> list[str]:
        """The identities the page may act as; [] when the page cannot choose (no identities
        file, or the HTTP service decides from CAIRN_API_KEY)."""

    def health(self, user: str | None = None) -> HealthResponse: ...

    def documents(self, user: str | None = None) -> list[DocumentInfo]: ...

    def search(self, request: SearchRequest, user: str | None = None) -> SearchResponse: ...

    def ask_stream(self, request: AnswerRequest, user: str | None = None) -> Iterator[ChatEvent]:
        """A ContextEvent (with the whole retrieval), TokenEvents (a ResetEvent when a provider
        fails mid-answer), then the FinalEvent; `ClientError` when retrieval fails."""

    def documents_admin(self, user: str | None = None) -> DocumentsAdmin | None:
        """The documents panel's operations (add, sync, delete) when ``user`` is an administrator
        where the index is written; None for anyone else. `ClientError` with a hint when the
        page could offer them once configured."""


def client_from_settings(settings: Settings) -> CairnClient:
    """HTTP when CAIRN_API_URL is set, else the services in this process."""
    if settings.api_url:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return HttpClient(settings.api_url, api_key=key)
    return InProcessClient.from_settings(settings)


@contextmanager
def _plain_store_errors() -> Iterator[None]:
    # Store errors already say what to do (`cairn ingest FOLDER`, stop the other process...).
    try:
        yield
    except StoreError as exc:
        raise ClientError(str(exc)) from None


# --- in this process ----------------------------------------------------------------------------


class InProcessClient:
    ingest_jobs: IngestJobs | None = None  # this process's ingest jobs, when it holds the runtime

    def __init__(self, search: SearchService, answers: AnswerService, identities: Identities) -> None:
        self.search_service = search
        self.answers = answers
        self.identities = identities

    @classmethod
    def from_settings(cls, settings: Settings) -> "InProcessClient":
        """Loads the models and opens the index once (the page caches the client per process)."""
        from runtime import build_runtime

        try:
            runtime = build_runtime(settings)  # an unknown provider fails before models load
        except (IdentitiesFileError, ValueError, StoreError) as exc:
            raise ClientError(str(exc)) from None
        client = cls(runtime.search, runtime.answers, runtime.identities)
        client.ingest_jobs = runtime.ingest_jobs  # the documents panel's (administrators only)
        runtime.announce("ui")  # `cairn ingest` then points to that panel instead of failing on the lock
        runtime.fill_rerank_vectors()
        return client

    @property
    def description(self) -> str:
        settings = self.search_service.settings
        where = settings.qdrant_url if settings.uses_server else settings.data_dir
        return f"this process ({self.search_service.backend} index at {where}, collection '{settings.collection}')"

    def users(self) -> list[str]:
        if not self.identities.keys_configured:
            return []
        anonymous = [ANONYMOUS_USER] if self.identities.anonymous else []
        return anonymous + self.identities.users

    def _identity(self, user: str | None) -> Identity:
        """The page runs next to the identities file, so it acts as a configured user by name."""
        if user in (None, ANONYMOUS_USER):
            if self.identities.anonymous is None:
                raise ClientError("Anonymous access is off in CAIRN_IDENTITIES_FILE: pick a user in the sidebar.")
            return self.identities.anonymous
        identity = self.identities.by_user(user)
        if identity is None:
            raise ClientError(f"Unknown user '{user}': pick one of the users of CAIRN_IDENTITIES_FILE in the sidebar.")
        return identity

    def health(self, user: str | None = None) -> HealthResponse:
        return self.search_service.health(self._identity(user))

    def documents(self, user: str | None = None) -> list[DocumentInfo]:
        with _plain_store_errors():
            return self.search_service.documents(self._identity(user))

    def search(self, request: SearchRequest, user: str | None = None) -> SearchResponse:
        with _plain_store_errors():
            return self.search_service.search(request, self._identity(user))

    def ask_stream(self, request: AnswerRequest, user: str | None = None) -> Iterator[ChatEvent]:
        events = self.answers.stream(request, self._identity(user))
        with _plain_store_errors():
            yield from events

    def documents_admin(self, user: str | None = None) -> DocumentsAdmin | None:
        if self.ingest_jobs is None:  # built outside from_settings: this process runs no jobs
            return None
        identity = self.identities.by_user(user) if user not in (None, ANONYMOUS_USER) else None
        if identity is not None and identity.admin:
            return LocalDocumentsAdmin(self.ingest_jobs, self.identities)
        if not self.identities.keys_configured:
            raise ClientError(
                "To add documents from this page, sign in as an administrator: a user with `admin: true` "
                "in CAIRN_IDENTITIES_FILE."
            )
        return None


# --- over HTTP ----------------------------------------------------------------------------------

_ANSWER_EVENT: TypeAdapter = TypeAdapter(AnswerEvent)


class HttpClient:
    """The Cairn HTTP API (`cairn serve`); the service resolves the API key to a user."""

    def __init__(self, base_url: str, api_key: str | None = None, answer_timeout_s: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"X-API-Key": api_key} if api_key else {}
        # Connecting is quick or hopeless; an answer may wait on a local model for minutes.
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(30.0, connect=5.0))
        self._answer_timeout = httpx.Timeout(answer_timeout_s, connect=5.0)

    @property
    def description(self) -> str:
        return f"the Cairn service at {self.base_url}"

    def users(self) -> list[str]:
        return []

    @contextmanager
    def _plain_http_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError:
            raise ClientError(
                f"Cannot reach the Cairn service at {self.base_url}: start it with `cairn serve`, "
                "or unset CAIRN_API_URL to search in this process."
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"The Cairn service at {self.base_url} did not answer in time: try again.") from None
        except httpx.HTTPError as exc:
            raise ClientError(f"The connection to the Cairn service at {self.base_url} failed: {exc}") from None

    def raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            detail = response.json().get("detail", response.text)
        except (ValueError, AttributeError):
            detail = response.text
        if response.status_code == 401:
            raise ClientError(f"The Cairn service refused the request ({detail}): set CAIRN_API_KEY to a valid key.")
        raise ClientError(f"The Cairn service answered HTTP {response.status_code}: {detail}")

    def _json(self, method: str, path: str, body: BaseModel | None = None) -> httpx.Response:
        payload = body.model_dump(mode="json", exclude_none=True) if body is not None else None
        return self.request(method, path, json=payload)

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request with the page's key (httpx's arguments); a service that cannot be reached
        or does not answer in time is a `ClientError`, any status is returned."""
        with self._plain_http_errors():
            return self._http.request(method, path, **kwargs)

    def health(self, user: str | None = None) -> HealthResponse:
        response = self._json("GET", "/health")
        if response.status_code in (200, 503):  # a 503 with a report: degraded, the report says why
            try:
                return HealthResponse.model_validate_json(response.text)
            except ValidationError:
                pass
        self.raise_for_status(response)
        raise ClientError(f"{self.base_url}/health did not answer with a health report: is CAIRN_API_URL a Cairn service?")

    def documents(self, user: str | None = None) -> list[DocumentInfo]:
        response = self._json("GET", "/documents")
        self.raise_for_status(response)
        return DocumentsResponse.model_validate_json(response.text).documents

    def search(self, request: SearchRequest, user: str | None = None) -> SearchResponse:
        response = self._json("POST", "/search", request)
        self.raise_for_status(response)
        return SearchResponse.model_validate_json(response.text)

    def ask_stream(self, request: AnswerRequest, user: str | None = None) -> Iterator[ChatEvent]:
        body = request.model_copy(update={"stream": True, "history": request.history[-MAX_HISTORY_TURNS:]})
        with self._plain_http_errors():
            payload = body.model_dump(mode="json", exclude_none=True)
            with connect_sse(
                self._http, "POST", "/answer", json=payload, timeout=self._answer_timeout
            ) as source:
                response = source.response
                if response.status_code >= 400:
                    response.read()
                    self.raise_for_status(response)
                for sse in source.iter_sse():
                    if sse.event == "error":
                        detail = json.loads(sse.data).get("detail", sse.data)
                        raise ClientError(f"The Cairn service could not answer: {detail}")
                    try:
                        event = _ANSWER_EVENT.validate_json(sse.data)
                    except ValidationError:
                        continue  # an event this client does not know yet
                    yield event

    def documents_admin(self, user: str | None = None) -> DocumentsAdmin | None:
        """The service's ingest API, when CAIRN_API_KEY is an administrator's there (the service
        decides who the page is: ``user`` is not used)."""
        return ServiceDocumentsAdmin.for_client(self)

"""What the documents panel does for an administrator (follow the ingest jobs, upload files into
a source, sync every source, list the indexed files and those that could not be indexed, delete
a document), done two ways: by this process's own ingest jobs when the page holds the index, or
by the service's ingest API over CAIRN_API_URL with the page's API key. Both speak the API's
models (`ingest.jobs`, `ingest.job_schemas`); a refusal arrives as `ClientError`, whose message
says what to do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, Protocol

import httpx

from app.client_error import ClientError
from ingest.job_schemas import IndexedFilesResponse, IngestJobsResponse, SourcesResponse
from ingest.jobs import DeletedDocument, IngestJobStatus
from ingest.sources import SourceConflictError, SourceEntry
from ingest.uploads import UploadError
from retrieval.access import Identities
from retrieval.index_schema import FileRecord
from retrieval.store import StoreError

if TYPE_CHECKING:
    from ingest.jobs import IngestJobs

UploadFile = tuple[str, BinaryIO]  # (its name, its bytes)

# An upload is as slow as the link and the files; connecting is quick or hopeless.
_UPLOAD_TIMEOUT = httpx.Timeout(600.0, connect=5.0)


class DocumentsAdmin(Protocol):
    upload_limit_mb: float | None  # each uploaded file's limit, when this side knows it

    def jobs(self) -> list[IngestJobStatus]:
        """Queued, running and recent jobs, newest first."""

    def job(self, job_id: str) -> IngestJobStatus | None:
        """None: no such job (any more)."""

    def sources(self) -> list[SourceEntry]: ...

    def indexed_files(self) -> list[FileRecord]:
        """Every indexed file with its groups, of every group."""

    def known_groups(self) -> list[str]:
        """Groups to offer for a new source (more may be typed)."""

    def upload(self, source: str, files: Sequence[UploadFile], groups: Sequence[str] | None) -> IngestJobStatus:
        """Store ``files`` in ``source``'s upload folder and queue its sync; ``groups`` only for a
        new source (its cairn-acl.yaml)."""

    def sync(self) -> list[IngestJobStatus]:
        """Queue a sync of every known source."""

    def delete_document(self, doc_id: str) -> DeletedDocument | None:
        """None: it was already gone."""


# --- in this process ----------------------------------------------------------------------------


@contextmanager
def _refusals_in_words() -> Iterator[None]:
    # Their messages name the file or source and what to do.
    try:
        yield
    except (UploadError, SourceConflictError, StoreError) as exc:
        raise ClientError(str(exc)) from None
    except RuntimeError as exc:  # the runner is shutting down
        raise ClientError(str(exc)) from None


class LocalDocumentsAdmin:
    """This process's ingest jobs: the page holds the index."""

    def __init__(self, jobs: IngestJobs, identities: Identities) -> None:
        self._jobs = jobs
        self._identities = identities
        self.upload_limit_mb = jobs.uploads.max_file_mb

    def jobs(self) -> list[IngestJobStatus]:
        return self._jobs.jobs()

    def job(self, job_id: str) -> IngestJobStatus | None:
        return self._jobs.get(job_id)

    def sources(self) -> list[SourceEntry]:
        return list(self._jobs.sources.all().values())

    def indexed_files(self) -> list[FileRecord]:
        with _refusals_in_words():
            return self._jobs.documents()

    def known_groups(self) -> list[str]:
        identities = self._identities
        return sorted({g for name in identities.users for g in identities.by_user(name).groups} | {"public"})

    def upload(self, source: str, files: Sequence[UploadFile], groups: Sequence[str] | None) -> IngestJobStatus:
        with _refusals_in_words():
            return self._jobs.add_uploads(source, files, groups)

    def sync(self) -> list[IngestJobStatus]:
        with _refusals_in_words():
            return self._jobs.sync()

    def delete_document(self, doc_id: str) -> DeletedDocument | None:
        with _refusals_in_words():
            return self._jobs.delete_document(doc_id)


# --- over HTTP ----------------------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        return response.text
    if isinstance(detail, list):  # a validation error: where, and what is wrong there
        return "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', []))}: {error.get('msg', '')}"
            if isinstance(error, dict) else str(error)
            for error in detail
        )  # fmt: skip
    return str(detail)


class ServiceConnection(Protocol):
    """The page's connection to the service (`app.client.HttpClient`), with its API key."""

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any status is returned; an unreachable service is a `ClientError`."""

    def raise_for_status(self, response: httpx.Response) -> None:
        """A `ClientError` saying what to do about an error status."""


class ServiceDocumentsAdmin:
    """The ingest API of the Cairn service at CAIRN_API_URL, as the page's API key."""

    upload_limit_mb = None  # the service checks each file against its own CAIRN_MAX_FILE_MB

    def __init__(self, client: ServiceConnection) -> None:
        self._client = client

    @classmethod
    def for_client(cls, client: ServiceConnection) -> ServiceDocumentsAdmin | None:
        """None unless the page's key is an administrator's on a service that runs ingest jobs
        (an unreachable service is reported by the index status already)."""
        try:
            response = client.request("GET", "/ingest/sources")
        except ClientError:
            return None
        return cls(client) if response.status_code == 200 else None

    def _refused(self, response: httpx.Response, what: str) -> NoReturn:
        if response.status_code in (403, 409, 413, 422):  # the service's words say which file and what to do
            raise ClientError(f"The Cairn service refused to {what}: {_detail(response)}")
        self._client.raise_for_status(response)
        raise ClientError(f"The Cairn service answered HTTP {response.status_code} when asked to {what}.")

    def _get(self, path: str, what: str) -> httpx.Response:
        response = self._client.request("GET", path)
        if response.status_code != 200:
            self._refused(response, what)
        return response

    def jobs(self) -> list[IngestJobStatus]:
        return IngestJobsResponse.model_validate_json(self._get("/ingest/jobs", "list its jobs").text).jobs

    def job(self, job_id: str) -> IngestJobStatus | None:
        response = self._client.request("GET", f"/ingest/jobs/{job_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self._refused(response, f"show job {job_id}")
        return IngestJobStatus.model_validate_json(response.text)

    def sources(self) -> list[SourceEntry]:
        return SourcesResponse.model_validate_json(self._get("/ingest/sources", "list its sources").text).sources

    def indexed_files(self) -> list[FileRecord]:
        response = self._get("/ingest/documents", "list the indexed files")
        return IndexedFilesResponse.model_validate_json(response.text).documents

    def known_groups(self) -> list[str]:
        return sorted({g for record in self.indexed_files() for g in record.groups} | {"public"})

    def upload(self, source: str, files: Sequence[UploadFile], groups: Sequence[str] | None) -> IngestJobStatus:
        fields: dict[str, str | list[str]] = {"source": source}
        if groups:
            fields["groups"] = list(groups)
        response = self._client.request(
            "POST", "/ingest", data=fields, files=[("files", (name, stream)) for name, stream in files],
            timeout=_UPLOAD_TIMEOUT,
        )  # fmt: skip
        if response.status_code != 202:
            self._refused(response, f"take the upload into '{source}'")
        return IngestJobStatus.model_validate_json(response.text)

    def sync(self) -> list[IngestJobStatus]:
        response = self._client.request("POST", "/ingest/sync")
        if response.status_code != 202:
            self._refused(response, "sync its sources")
        return IngestJobsResponse.model_validate_json(response.text).jobs

    def delete_document(self, doc_id: str) -> DeletedDocument | None:
        response = self._client.request("DELETE", f"/documents/{doc_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            self._refused(response, f"delete document {doc_id}")
        return DeletedDocument.model_validate_json(response.text)

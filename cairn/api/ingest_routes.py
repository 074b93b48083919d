"""`POST /ingest`, `/ingest/jobs`, `/ingest/sync`, `/ingest/sources`, `/ingest/documents` and
`DELETE /documents/{doc_id}`: the live index, for administrators only.

Jobs run in the serving process (the runtime's `IngestJobs`), one at a time, while searches go
on. Every route here answers 403 to a caller who is not an administrator (``admin: true`` in the
identities file), before anything is read: job status, failures and the documents listing name
files of every group, so none of it reaches anyone else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from cairn.api.dependencies import IdentityDep
from cairn.api.errors import error_response, request_id
from ingest.job_schemas import (
    IndexedFilesResponse,
    IngestFolderRequest,
    IngestJobsResponse,
    SourcesResponse,
    SyncRequest,
)
from ingest.jobs import DeletedDocument, IngestJobs, IngestJobStatus, RerankFillStatus
from ingest.sources import FolderNotAllowedError, SourceConflictError, allowed_folder
from ingest.uploads import UploadError, UploadTooLargeError
from retrieval.access import Identity

router = APIRouter(tags=["ingest"])

_MAX_UPLOAD_FILES = 1000
# One upload request, all its files together (each file is held to CAIRN_MAX_FILE_MB on its own);
# parts are spooled to disk, not memory. The API's own body limit is for JSON requests.
_MAX_UPLOAD_BYTES = 1024**3


def current_admin(identity: IdentityDep) -> Identity:
    if not identity.admin:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"'{identity.user}' is not an administrator: only administrators may add, sync or remove documents "
            "(ask whoever runs Cairn to mark your user `admin: true` in CAIRN_IDENTITIES_FILE)",
        )
    return identity


def current_jobs(request: Request) -> IngestJobs:
    jobs = getattr(request.app.state, "ingest_jobs", None)
    if jobs is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "this service was started without ingest jobs: start it with `cairn serve`",
        )
    return jobs


AdminDep = Annotated[Identity, Depends(current_admin)]
JobsDep = Annotated[IngestJobs, Depends(current_jobs)]


_ERRORS = {
    401: {"description": "unknown or missing API key"},
    403: {"description": "not an administrator, or a folder outside CAIRN_INGEST_ROOTS"},
    503: {"description": "this service runs no ingest jobs"},
}

_MULTIPART = {
    "type": "object",
    "required": ["source", "files"],
    "properties": {
        "source": {"type": "string", "description": "the source the files go to (data/uploads/<source>/)"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "groups": {
            "type": "array",
            "items": {"type": "string"},
            "description": "a new source only: the groups that may read its files (its cairn-acl.yaml)",
        },
    },
}
_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": IngestFolderRequest.model_json_schema()},
            "multipart/form-data": {"schema": _MULTIPART},
        },
    }
}


@router.post(
    "/ingest",
    response_model=IngestJobStatus,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_INGEST_BODY,
    max_body_size=_MAX_UPLOAD_BYTES,
    responses=_ERRORS
    | {
        409: {"description": "the source is another kind of folder (uploads vs a folder of files)"},
        413: {"description": "an uploaded file is over CAIRN_MAX_FILE_MB"},
        422: {"description": "a bad body, folder, file name or type"},
    },
)
async def ingest(request: Request, admin: AdminDep, jobs: JobsDep) -> IngestJobStatus | JSONResponse:
    """Queue a job: a JSON body names a folder inside CAIRN_INGEST_ROOTS; a multipart body uploads
    files into a source's folder under CAIRN_UPLOAD_DIR (its cairn-acl.yaml applies). The job runs
    in this process while searches go on: follow it at `/ingest/jobs/{id}`."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _upload(request, jobs)
    try:
        body = IngestFolderRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    try:
        folder = allowed_folder(body.folder, jobs.settings.jobs.ingest_roots)
        return jobs.submit(folder, body.source, delete_missing=body.delete_missing, kind="folder")
    except FolderNotAllowedError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    except NotADirectoryError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except SourceConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


async def _upload(request: Request, jobs: IngestJobs) -> IngestJobStatus | JSONResponse:
    async with request.form(max_files=_MAX_UPLOAD_FILES) as form:
        source = form.get("source")
        if not isinstance(source, str) or not source.strip():
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "name the source the files go to: a 'source' field"
            )
        files = [f for f in form.getlist("files") if not isinstance(f, str)]
        groups = [g.strip() for value in form.getlist("groups") if isinstance(value, str) for g in value.split(",")]
        uploads = [(f.filename or "", f.file) for f in files]
        try:
            # writing files and checking the index block: off the event loop
            return await run_in_threadpool(jobs.add_uploads, source.strip(), uploads, [g for g in groups if g])
        except UploadTooLargeError as exc:  # a response, not an HTTPException: 413s raised are the body limit's
            return error_response(status.HTTP_413_CONTENT_TOO_LARGE, str(exc), request_id(request))
        except UploadError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        except SourceConflictError as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/ingest/jobs", response_model=IngestJobsResponse, responses=_ERRORS)
def list_jobs(admin: AdminDep, jobs: JobsDep) -> IngestJobsResponse:
    """Queued, running and recent jobs, newest first."""
    return IngestJobsResponse(jobs=jobs.jobs())


@router.get(
    "/ingest/jobs/{job_id}", response_model=IngestJobStatus, responses=_ERRORS | {404: {"description": "no such job"}}
)
def get_job(job_id: str, admin: AdminDep, jobs: JobsDep) -> IngestJobStatus:
    """A job's state, files done and failed, chunks, rate and ETA; its failures with their reasons once done."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job '{job_id}': list them at /ingest/jobs")
    return job


@router.get("/ingest/rerank-vectors", response_model=RerankFillStatus, responses=_ERRORS)
def rerank_vectors(admin: AdminDep, jobs: JobsDep) -> RerankFillStatus:
    """The background fill of the reranking model's vectors: chunks filled of all (every group:
    administrators only). Unfilled chunks are encoded per question until it completes."""
    return jobs.fill_status()


@router.post(
    "/ingest/sync",
    response_model=IngestJobsResponse,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS | {404: {"description": "no such source"}},
)
def sync(admin: AdminDep, jobs: JobsDep, body: SyncRequest | None = None) -> IngestJobsResponse:
    """Queue a sync of every source this service knows (or of one): new, changed and deleted files."""
    try:
        return IngestJobsResponse(jobs=jobs.sync(body.source if body else None))
    except KeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.args[0]) from None


@router.get("/ingest/sources", response_model=SourcesResponse, responses=_ERRORS)
def sources(admin: AdminDep, jobs: JobsDep) -> SourcesResponse:
    """The sources this service keeps: folder, uploads or not, last sync and the files it could not index."""
    return SourcesResponse(sources=list(jobs.sources.all().values()))


@router.get("/ingest/documents", response_model=IndexedFilesResponse, responses=_ERRORS)
def indexed_files(admin: AdminDep, jobs: JobsDep) -> IndexedFilesResponse:
    """Every indexed file with its access groups and chunk count (all groups: administrators only)."""
    return IndexedFilesResponse(documents=jobs.documents())


@router.delete(
    "/documents/{doc_id}",
    response_model=DeletedDocument,
    responses=_ERRORS | {404: {"description": "no such document"}},
)
def delete_document(doc_id: str, admin: AdminDep, jobs: JobsDep) -> DeletedDocument:
    """Remove a document's chunks and record, and its file when it was uploaded. A document of a
    folder comes back at the folder's next sync while its file is there: delete the file too."""
    deleted = jobs.delete_document(doc_id)
    if deleted is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no indexed document '{doc_id}'")
    return deleted

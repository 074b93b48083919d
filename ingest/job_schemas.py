"""Typed requests and responses of the live index: the boundary the ingest API (cairn/api/
ingest_routes.py) and its clients (the chat page's documents panel over CAIRN_API_URL) share.
A job's own status and a deletion's outcome are `ingest.jobs.IngestJobStatus` and
`ingest.jobs.DeletedDocument`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ingest.jobs import IngestJobStatus
from ingest.sources import SourceEntry
from retrieval.index_schema import FileRecord


class IngestFolderRequest(BaseModel):
    folder: str = Field(min_length=1, description="a folder on the service's machine, inside CAIRN_INGEST_ROOTS")
    source: str | None = Field(default=None, description="the source's name (default: the folder's name)")
    delete_missing: bool = Field(default=True, description="remove documents whose file is gone from the folder")


class IngestJobsResponse(BaseModel):
    jobs: list[IngestJobStatus]  # newest first


class SyncRequest(BaseModel):
    source: str | None = Field(default=None, description="one source; none: every source this service knows")


class SourcesResponse(BaseModel):
    sources: list[SourceEntry]


class IndexedFilesResponse(BaseModel):
    documents: list[FileRecord]  # every indexed file with its groups (the administrator's view)

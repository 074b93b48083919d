"""`cairn ingest` when `cairn serve` holds the embedded index: the job goes to the service's
ingest API (an administrator's key), and its status comes back from there."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from cairn.exit_codes import ExitCode
from ingest.jobs import IngestJobStatus, RerankFillStatus


class RemoteError(Exception):
    """The service refused or could not be reached: the message says what to do."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


class RemoteJobs:
    """The job API of one running `cairn serve`, for one folder."""

    def __init__(self, url: str, api_key: str | None, pid: int, connect_wait_s: float = 20.0) -> None:
        self.url = url.rstrip("/")
        self.pid = pid
        self.connect_wait_s = connect_wait_s  # the service may still be starting
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(60.0, connect=5.0))

    @property
    def where(self) -> str:
        return f"`cairn serve` (pid {self.pid}) at {self.url}"

    def submit_folder(self, folder: Path, source: str | None, delete_missing: bool) -> IngestJobStatus:
        body = {"folder": str(folder), "source": source, "delete_missing": delete_missing}
        return IngestJobStatus.model_validate_json(self._request("POST", "/ingest", json=body).text)

    def status(self, job_id: str) -> IngestJobStatus:
        return IngestJobStatus.model_validate_json(self._request("GET", f"/ingest/jobs/{job_id}").text)

    def fill_status(self) -> RerankFillStatus:
        return RerankFillStatus.model_validate_json(self._request("GET", "/ingest/rerank-vectors").text)

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        deadline = time.monotonic() + self.connect_wait_s
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
                break
            except httpx.ConnectError:
                if time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                raise RemoteError(
                    f"the index is held by {self.where}, which does not answer: check that it runs (or stop it) "
                    "and run the command again",
                    ExitCode.INDEX_UNAVAILABLE,
                ) from None
            except httpx.HTTPError as exc:
                raise RemoteError(
                    f"{self.where} did not answer ({exc}): try again", ExitCode.INDEX_UNAVAILABLE
                ) from None
        if response.status_code < 400:
            return response
        try:
            detail = response.json().get("detail", response.text)
        except (ValueError, AttributeError):
            detail = response.text
        if not isinstance(detail, str):
            detail = str(detail)
        if response.status_code in (401, 403) and "CAIRN_INGEST_ROOTS" not in detail:
            raise RemoteError(
                f"{self.where} holds the index and takes this job only from an administrator ({detail}): "
                "pass --api-key KEY or set CAIRN_API_KEY to the key of a user with `admin: true` in its "
                "CAIRN_IDENTITIES_FILE",
                ExitCode.USAGE,
            )
        if response.status_code in (401, 403, 404, 409, 413, 422):
            raise RemoteError(f"{self.where} refused the job: {detail}", ExitCode.USAGE)
        raise RemoteError(f"{self.where} answered HTTP {response.status_code}: {detail}", ExitCode.INDEX_UNAVAILABLE)

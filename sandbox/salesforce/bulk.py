"""Bulk API 2.0 query jobs (facts A9).

A job moves ``UploadComplete → InProgress → JobComplete`` over ``bulk_job_seconds``; when
a request first sees it complete, the query result is snapshotted into a temp table and
results are streamed from it as CSV pages (``maxRecords`` rows each, header row, every value
double-quoted) with ``Sforce-NumberOfRecords`` and ``Sforce-Locator`` (the literal ``null``
on the last page). Results asked for before completion → 412; with another API version than
the job's → 409. OFFSET and aggregate queries are refused, as Bulk queries do not support them.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sandbox.salesforce import soql, timefmt
from sandbox.salesforce.errors import ApiError, not_found
from sandbox.salesforce.ids import make_id
from sandbox.salesforce.options import SalesforceOptions
from sandbox.salesforce.query import QueryService
from sandbox.salesforce.store import Store

DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_STREAM_CHUNK = 2000
# Salesforce keeps query job results for 7 days; a long-running sandbox keeps the newest jobs.
MAX_KEPT_JOBS = 100


@dataclass
class BulkJob:
    """One query job."""

    id: str
    operation: str
    query: str
    compiled: soql.CompiledQuery
    created_by: str
    created_date: str
    api_version: str
    column_delimiter: str
    line_ending: str
    started: float
    state: str = "UploadComplete"
    table: str | None = None
    total: int = 0
    finished_date: str | None = None
    processing_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def info(self) -> dict[str, Any]:
        """The job information body."""
        body: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.compiled.sobject,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.finished_date or self.created_date,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "jobType": "V2Query",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if self.state == "JobComplete":
            body.update(
                numberRecordsProcessed=self.total,
                retries=0,
                totalProcessingTime=self.processing_ms,
            )
        return body


@dataclass(frozen=True)
class ResultPage:
    """A CSV page: its headers and a stream of encoded chunks."""

    number_of_records: int
    locator: str
    chunks: Iterator[bytes]


class BulkService:
    """Creates, runs and serves Bulk 2.0 query jobs."""

    def __init__(self, store: Store, queries: QueryService, options: SalesforceOptions) -> None:
        self.store = store
        self.queries = queries
        self.options = options
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()
        self._counter = 0

    def create(self, body: Any, *, user_id: str, api_version: str) -> dict[str, Any]:
        """``POST /jobs/query``: validate the request and queue the job."""
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body is not valid JSON")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise ApiError(
                400, "INVALIDJOB", f"Invalid operation: {operation}; use query or queryAll"
            )
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "INVALIDJOB", "The query field is required for query jobs")
        delimiter = body.get("columnDelimiter") or "COMMA"
        line_ending = body.get("lineEnding") or "LF"
        if delimiter not in DELIMITERS:
            raise ApiError(400, "INVALIDJOB", f"Invalid column delimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"Invalid line ending: {line_ending}")
        if body.get("contentType", "CSV") != "CSV":
            raise ApiError(400, "INVALIDJOB", "Only CSV is supported for query job results")
        compiled = self.queries.compile(text, include_deleted=operation == "queryAll")
        parsed = soql.parse_soql(text)
        if parsed.offset is not None:
            raise ApiError(400, "INVALIDJOB", "The OFFSET clause is not allowed in Bulk queries")
        if compiled.kind != "records":
            raise ApiError(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API")
        self._forget_old_jobs()
        with self._lock:
            self._counter += 1
            job_id = make_id("750", self._counter)
            job = BulkJob(
                id=job_id,
                operation=operation,
                query=text,
                compiled=compiled,
                created_by=user_id,
                created_date=timefmt.to_api(timefmt.utc_now()),
                api_version=api_version,
                column_delimiter=delimiter,
                line_ending=line_ending,
                started=time.monotonic(),
            )
            self._jobs[job_id] = job
        return job.info()

    def count(self) -> int:
        """How many jobs the org holds."""
        with self._lock:
            return len(self._jobs)

    def get(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/query/{id}``: the job, advanced to its current state."""
        job = self._job(job_id)
        self._advance(job)
        return job.info()

    def list(self) -> dict[str, Any]:
        """``GET /jobs/query``: every job (one page)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            self._advance(job)
        return {"done": True, "records": [job.info() for job in jobs], "nextRecordsUrl": None}

    def abort(self, job_id: str, body: Any) -> dict[str, Any]:
        """``PATCH /jobs/query/{id}`` with ``{"state": "Aborted"}``."""
        job = self._job(job_id)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise ApiError(400, "INVALIDJOB", "A query job can only be set to Aborted")
        self._advance(job)
        with job.lock:
            if job.state in ("JobComplete", "Failed", "Aborted"):
                raise ApiError(400, "INVALIDJOB", f"Cannot abort a job in state {job.state}")
            job.state = "Aborted"
            job.finished_date = timefmt.to_api(timefmt.utc_now())
        return job.info()

    def delete(self, job_id: str) -> None:
        """``DELETE /jobs/query/{id}``: forget the job and its results."""
        job = self._job(job_id)
        self._advance(job)
        if job.state in ("UploadComplete", "InProgress"):
            raise ApiError(400, "INVALIDJOB", "A running job must be aborted before deletion")
        with self._lock:
            self._jobs.pop(job.id, None)
        if job.table:
            self.store.drop_cursor(job.table)

    def results(
        self, job_id: str, *, api_version: str, locator: str | None, max_records: str | None
    ) -> ResultPage:
        """``GET /jobs/query/{id}/results``: one CSV page."""
        job = self._job(job_id)
        if api_version != job.api_version:
            raise ApiError(
                409,
                "INVALIDJOB",
                f"Results must be requested with the job's API version {job.api_version}",
            )
        self._advance(job)
        if job.state == "Aborted":
            raise ApiError(400, "INVALIDJOB", "The job was aborted: there are no results")
        if job.state != "JobComplete" or job.table is None:
            raise ApiError(412, "JOB_NOT_COMPLETE", "The job is not complete yet")
        offset = _decode_locator(locator) if locator else 0
        if offset is None or offset > job.total:
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        size = self.options.bulk_default_max_records
        if max_records is not None:
            if not max_records.isdigit() or int(max_records) < 1:
                raise ApiError(400, "INVALIDREQUEST", "maxRecords must be a positive integer")
            size = int(max_records)
        count = max(0, min(size, job.total - offset))
        end = offset + count
        next_locator = _encode_locator(end) if end < job.total else "null"
        return ResultPage(count, next_locator, self._stream(job, job.table, offset, count))

    def clear(self) -> None:
        """Forget every job (used on stop)."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            if job.table:
                self.store.drop_cursor(job.table)

    # -- internals ----------------------------------------------------------------------------

    def _forget_old_jobs(self) -> None:
        with self._lock:
            excess = list(self._jobs.values())[: max(0, len(self._jobs) - MAX_KEPT_JOBS + 1)]
            for job in excess:
                del self._jobs[job.id]
        for job in excess:
            if job.table:
                self.store.drop_cursor(job.table)

    def _job(self, job_id: str) -> BulkJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise not_found()
        return job

    def _advance(self, job: BulkJob) -> None:
        with job.lock:
            if job.state not in ("UploadComplete", "InProgress"):
                return
            elapsed = time.monotonic() - job.started
            duration = self.options.bulk_job_seconds
            if elapsed < duration * 0.2:
                return
            if elapsed < duration:
                job.state = "InProgress"
                return
            began = time.monotonic()
            job.table, job.total = self.store.materialize(job.compiled.sql, job.compiled.params)
            job.processing_ms = int((time.monotonic() - began) * 1000)
            job.state = "JobComplete"
            job.finished_date = timefmt.to_api(timefmt.utc_now())

    def _stream(self, job: BulkJob, table: str, offset: int, count: int) -> Iterator[bytes]:
        delimiter = DELIMITERS[job.column_delimiter]
        newline = LINE_ENDINGS[job.line_ending]
        compiled = job.compiled
        header = delimiter.join(_quote(path) for path in compiled.field_paths) + newline
        yield header.encode()
        done = 0
        while done < count:
            rows = self.store.read_cursor(table, offset + done, min(_STREAM_CHUNK, count - done))
            if not rows:
                break
            lines = [
                delimiter.join(_csv_value(v) for v in compiled.flatten_row(row)) + newline
                for row in rows
            ]
            done += len(rows)
            yield "".join(lines).encode()


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _csv_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return '"true"' if value else '"false"'
    text = str(value)
    if len(text) == 28 and text.endswith("+0000") and text[10] == "T":
        text = text[:-5] + "Z"  # Bulk CSV writes dateTimes with Z
    return _quote(text)


def _encode_locator(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int | None:
    padded = locator + "=" * (-len(locator) % 4)
    try:
        text = base64.b64decode(padded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None

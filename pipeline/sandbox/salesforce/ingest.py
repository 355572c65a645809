"""Bulk API 2.0 ingest jobs: create, upload a CSV, close, processed on a worker, results.

A job moves Open -> UploadComplete -> InProgress -> JobComplete (or Failed, or Aborted), and
its records go through the same set-at-a-time `Writer` as REST's. The upload is kept as the
client sent it, loaded into DuckDB when the job runs, and every result file is rendered from it
by DuckDB.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.sandbox.salesforce.errors import ApiError
from pipeline.sandbox.salesforce.jobs import Jobs, job_info
from pipeline.sandbox.salesforce.write_plan import OPERATIONS, Batch, Operation
from pipeline.sandbox.salesforce.writes import (
    BatchError,
    ResultKind,
    UnknownField,
    Writer,
    Written,
)

COLUMN_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
MAX_UPLOAD_BYTES = 150 * 1024 * 1024  # Bulk API 2.0's limit on one job's data
RECORDS_PER_BATCH = 10_000  # Bulk API 2.0 counts one batch per 10,000 records it processes
# [assume: pessimistic] a job is never done at once: each state before the end lasts a while.
STEP_SECONDS = 0.05
OPEN_STATES = frozenset({"Open", "UploadComplete", "InProgress"})


@dataclass
class IngestJob:
    id: str
    operation: Operation
    sobject: str
    external_id_field: str | None
    column_delimiter: str
    line_ending: str
    api_version: str
    created: dt.datetime
    upload: Path
    state: str = "Open"
    error_message: str | None = None
    uploaded: bool = False
    processed: int = 0
    failed: int = 0
    processing_ms: int = 0
    batches: int = 0  # counted against the org's DailyBulkApiBatches
    batch: Batch | None = None
    written: Written | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def info(self, created_by: str) -> dict[str, object]:
        info = job_info(self, created_by)
        if self.external_id_field:
            info["externalIdFieldName"] = self.external_id_field
        info |= {
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "jobType": "V2Ingest",
            "contentUrl": f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
            "numberRecordsProcessed": self.processed,
            "numberRecordsFailed": self.failed,
            "retries": 0,
            "totalProcessingTime": self.processing_ms,
            "apiActiveProcessingTime": self.processing_ms,
            "apexProcessingTime": 0,
        }
        if self.error_message:
            info["errorMessage"] = self.error_message
        return info


def _job_state_error(job: IngestJob, doing: str) -> ApiError:
    return ApiError(409, "INVALIDJOBSTATE", f"Cannot {doing}: the job's state is {job.state}")


class IngestJobs:
    """The org's ingest jobs; `run` is called on a worker thread once a job is closed."""

    def __init__(self, writer: Writer, pages_dir: Path, next_id: Callable[[str], str]) -> None:
        self.writer = writer
        self.pages_dir = pages_dir
        self._next_id = next_id
        self._jobs: Jobs[IngestJob] = Jobs()

    def create(self, body: dict[str, object], version: str) -> IngestJob:
        operation = body.get("operation")
        if operation not in OPERATIONS:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        name = body.get("object")
        obj = self.writer.visible.sobject(name) if isinstance(name, str) else None
        if obj is None or obj.custom_metadata or obj.name == "Organization":
            raise ApiError(
                400, "INVALIDENTITY", f"Entity '{name}' is not supported by the Bulk API."
            )
        if body.get("contentType", "CSV") != "CSV":
            raise ApiError(400, "INVALIDJOB", f"Invalid contentType: {body.get('contentType')}")
        delimiter = str(body.get("columnDelimiter") or "COMMA")
        line_ending = str(body.get("lineEnding") or "LF")
        if delimiter not in COLUMN_DELIMITERS:
            raise ApiError(400, "INVALIDJOB", f"Invalid columnDelimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", f"Invalid lineEnding: {line_ending}")
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            if not isinstance(external, str) or not external:
                raise ApiError(
                    400, "INVALIDJOB", "externalIdFieldName is required for an upsert job"
                )
            key = obj.field(external)
            if key is None or not (key.external_id or key.name == "Id"):
                raise ApiError(
                    400,
                    "INVALIDJOB",
                    f"The field {external} is not an external id field of {obj.name}",
                )
            external = key.name
        job_id = self._next_id("750")
        job = IngestJob(
            id=job_id,
            operation=operation,
            sobject=obj.name,
            external_id_field=external if operation == "upsert" else None,
            column_delimiter=delimiter,
            line_ending=line_ending,
            api_version=version,
            created=dt.datetime.now(dt.UTC),
            upload=self.pages_dir / f"ingest-{job_id}.csv",
        )
        return self._jobs.add(job)

    def job(self, job_id: str) -> IngestJob:
        return self._jobs.get(job_id)

    def jobs(self) -> list[IngestJob]:
        return self._jobs.all()

    def start_upload(self, job_id: str) -> IngestJob:
        """The job that a `PUT .../batches` may fill: Open and still empty."""
        job = self.job(job_id)
        with job.lock:
            if job.state != "Open":
                raise _job_state_error(job, "upload data")
            if job.uploaded:
                # [assume: pessimistic] one upload per job; a second is refused, not appended.
                raise _job_state_error(job, "upload data twice")
            job.uploaded = True
        return job

    def set_state(self, job_id: str, state: object) -> IngestJob:
        """`PATCH jobs/ingest/{id}`: close the upload (`UploadComplete`) or abort."""
        job = self.job(job_id)
        with job.lock:
            if state == "UploadComplete":
                if job.state != "Open":
                    raise _job_state_error(job, "close the job")
                job.state = "UploadComplete"
            elif state == "Aborted":
                if job.state not in OPEN_STATES:
                    raise ApiError(400, "INVALIDJOBSTATE", f"Job is already {job.state}")
                job.state = "Aborted"
            else:
                raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state: {state}")
        return job

    def run(self, job: IngestJob) -> None:
        """Processes a closed job (on a worker thread): its records, then its final state."""
        time.sleep(STEP_SECONDS)
        with job.lock:
            if job.state != "UploadComplete":
                return
            job.state = "InProgress"
        time.sleep(STEP_SECONDS)
        started = time.monotonic()
        try:
            batch = self._batch(job)
            job.batches = max(1, math.ceil(self._rows(batch) / RECORDS_PER_BATCH))
            with job.lock:
                if job.state == "Aborted":
                    return
            (written,) = self.writer.write(
                [(job.sobject, batch)],
                job.operation,
                api="bulk",
                key=job.external_id_field or "Id",
            )
        except (BatchError, duckdb.Error, OSError) as exc:
            job.batches = job.batches or 1
            with job.lock:
                job.state = "Failed"
                job.error_message = _failure(exc)
            return
        processed, failed = self.writer.counts(written)
        with job.lock:
            job.written = written
            job.processed, job.failed = processed, failed
            job.processing_ms = int((time.monotonic() - started) * 1000)
            if job.state != "Aborted":
                job.state = "JobComplete"

    def _batch(self, job: IngestJob) -> Batch:
        """The job's upload as a batch, loaded once."""
        if job.batch is not None:
            return job.batch
        if not job.uploaded or not job.upload.exists():
            # [assume: pessimistic] a job closed with no data fails when it runs.
            raise BatchError("InvalidBatch", "InvalidBatch : No data was uploaded for this job")
        data = job.upload.read_bytes()
        # Salesforce refuses data whose line endings are not the job's ("ClientInputError").
        crlf = data.count(b"\r\n")
        if (job.line_ending == "LF" and crlf) or (
            job.line_ending == "CRLF" and data.count(b"\n") > crlf
        ):
            raise BatchError(
                "ClientInputError",
                "ClientInputError : LineEnding is invalid on user data. Current LineEnding "
                f"setting is {job.line_ending}",
            )
        job.batch = self.writer.stage_csv(job.upload, COLUMN_DELIMITERS[job.column_delimiter])
        return job.batch

    def _rows(self, batch: Batch) -> int:
        cur = self.writer.db.cursor()
        try:
            (count,) = cur.execute(f"SELECT count(*) FROM {batch.table}").fetchone() or (0,)
        finally:
            cur.close()
        return int(count)

    def results(self, job_id: str, kind: ResultKind, version: str) -> tuple[Path | None, int]:
        """One result file of the job (None: no records), and its record count."""
        job = self.job(job_id)
        if job.api_version != version:
            raise ApiError(409, "INVALIDJOBSTATE", "Job was created with a different API version")
        with job.lock:
            state = job.state
        complete = state == "JobComplete"
        if (kind != "unprocessed" and not complete) or (
            kind == "unprocessed" and state in OPEN_STATES
        ):
            # [assume: pessimistic] results come only once the job ends, as for a query job.
            raise ApiError(412, "JOB_NOT_COMPLETE", f"Job {job.id} is not complete: {state}")
        if complete and kind == "unprocessed":
            return None, 0
        try:
            batch = self._batch(job)
        except (BatchError, duckdb.Error):
            # An upload the job could not read is unprocessed as it came.
            return (job.upload if job.upload.exists() else None), 0
        path = self.pages_dir / f"{job.id}-{kind}-{self._next_id('752')}.csv"
        count = self.writer.write_results(
            batch,
            job.written,
            kind,
            path,
            COLUMN_DELIMITERS[job.column_delimiter],
            LINE_ENDINGS[job.line_ending],
        )
        return (path if count else None), count

    def delete(self, job_id: str) -> None:
        job = self.job(job_id)
        with job.lock:
            if job.state in ("Open", "InProgress"):
                raise ApiError(400, "INVALIDJOBSTATE", f"Cannot delete a job that is {job.state}")
        self._jobs.remove(job_id)
        parts: list[Batch | Written] = [p for p in (job.batch, job.written) if p is not None]
        self.writer.drop(*parts)
        job.upload.unlink(missing_ok=True)


def _failure(exc: Exception) -> str:
    """A failed job's `errorMessage`, as Salesforce words it."""
    if isinstance(exc, UnknownField):
        return f"InvalidBatch : Field name not found : {exc.name}"
    if isinstance(exc, BatchError):
        if exc.message.startswith(("InvalidBatch", "ClientInputError")):
            return exc.message
        return f"InvalidBatch : {exc.message}"
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # [assume: pessimistic] a CSV DuckDB cannot read fails the job, with the reader's words.
    return f"InvalidBatch : Failed to parse the CSV data: {first_line}"

"""The org's Bulk API 2.0 jobs by id, query and ingest alike: what status polls look up."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Generic, Protocol, TypeVar

from pipeline.sandbox.salesforce.errors import ApiError


class _Job(Protocol):
    id: str
    operation: str
    sobject: str
    created: dt.datetime
    state: str


def sf_datetime(value: dt.datetime) -> str:
    """A datetime as Salesforce writes it in job info (`2026-12-04T10:00:00.000+0000`)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def job_info(job: _Job, created_by: str) -> dict[str, object]:
    """The fields every Bulk API 2.0 job's info starts with, query and ingest alike."""
    stamp = sf_datetime(job.created)
    return {
        "id": job.id,
        "operation": job.operation,
        "object": job.sobject,
        "createdById": created_by,
        "createdDate": stamp,
        "systemModstamp": stamp,
        "state": job.state,
    }


J = TypeVar("J", bound=_Job)


class Jobs(Generic[J]):
    """Jobs by id, safe to use from the server's worker threads."""

    def __init__(self) -> None:
        self._jobs: dict[str, J] = {}
        self._lock = threading.Lock()

    def add(self, job: J) -> J:
        with self._lock:
            self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> J:
        """The job, or Salesforce's 404 for an id it does not know."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def all(self) -> list[J]:
        with self._lock:
            return list(self._jobs.values())

    def remove(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

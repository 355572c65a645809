"""The org's Bulk API 2.0 jobs by id, query and ingest alike: what status polls look up."""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

from pipeline.sandbox.salesforce.errors import ApiError


class _Job(Protocol):
    id: str


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

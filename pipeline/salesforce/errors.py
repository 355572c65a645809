"""What the Salesforce client raises: one base class the extract can catch, one subclass per cause.

Messages are built from Salesforce's own error codes and texts and from the client's settings
minus their secrets; no message ever carries a password, token, client secret or session id.
"""

from __future__ import annotations


class SalesforceExtractError(Exception):
    """Base of every error the Salesforce client raises."""


class SalesforceAuthError(SalesforceExtractError):
    """A login was refused, or the session can no longer be used and cannot be renewed."""


class SessionExpiredError(SalesforceAuthError):
    """A directly supplied session (auth='session') expired: this client cannot log in again."""


class SalesforceRequestError(SalesforceExtractError):
    """Salesforce refused an API call (4xx), or a transient failure outlasted the retries."""

    def __init__(
        self, message: str, *, status: int | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class ApiLimitExceeded(SalesforceRequestError):
    """The org's daily API request allowance is used up (403 REQUEST_LIMIT_EXCEEDED)."""


class QueryTimeout(SalesforceRequestError):
    """A query ran past Salesforce's time limit (400 QUERY_TIMEOUT): the same query would time
    out again, a narrower one may not."""


class QuotaFloorReached(SalesforceExtractError):
    """Fewer daily API requests are left than the configured floor: stop before the org runs out."""

    def __init__(self, remaining: int, maximum: int, floor: int) -> None:
        super().__init__(
            f"{remaining} of {maximum} daily API requests left, below the configured floor "
            f"{floor}; stopping before the org runs out"
        )
        self.remaining = remaining
        self.maximum = maximum
        self.floor = floor


class BulkJobFailed(SalesforceExtractError):
    """A Bulk API 2.0 query job ended Failed or Aborted on every attempt."""

    def __init__(self, operation: str, attempts: int, job_ids: list[str], message: str) -> None:
        last = f" (last job {job_ids[-1]})" if job_ids else ""
        super().__init__(f"Bulk API 2.0 {operation} job failed {attempts} time(s){last}: {message}")
        self.operation = operation
        self.attempts = attempts
        self.job_ids = job_ids
        self.salesforce_message = message

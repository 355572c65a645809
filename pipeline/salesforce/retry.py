"""What a failed Salesforce call means for trying it again (the policy is `pipeline.retry`).

`classify` is the single place that decides what a failure means; each caller only chooses which
kinds it retries at its own level (a request retries transient failures and expired sessions, a
whole Bulk API job retries a job that ended Failed), so retries never multiply across levels.
"""

from __future__ import annotations

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceOperationError,
)

from pipeline.retry import Failure


def classify(exc: BaseException) -> Failure:
    """Sort a failure into one of the `Failure` kinds.

    Transient: a connection that dropped, timed out or broke mid-body, and 5xx answers
    (500 UNKNOWN_EXCEPTION, 502, 503 SERVER_UNAVAILABLE, 504). Certificate failures are
    `ConnectionError`s to requests but never heal, so they are permanent. Everything else
    Salesforce answers (400 malformed query, 403 refused incl. REQUEST_LIMIT_EXCEEDED, 404) is
    permanent, as is a refused login.
    """
    if isinstance(exc, requests.exceptions.SSLError):
        return Failure.PERMANENT
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError,
    ):
        return Failure.TRANSIENT
    if isinstance(exc, SalesforceAuthenticationFailed):
        return Failure.PERMANENT
    if isinstance(exc, SalesforceExpiredSession):
        return Failure.EXPIRED_SESSION
    if isinstance(exc, SalesforceGeneralError) and exc.status >= 500:
        return Failure.TRANSIENT
    if isinstance(exc, SalesforceOperationError):
        return Failure.JOB_FAILED
    if isinstance(exc, SalesforceError):
        return Failure.PERMANENT
    return Failure.PERMANENT

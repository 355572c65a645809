"""The retry policy: what is retried, how long it waits, how many times. No real sleeping."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from pipeline.retry import Failure, RetryPolicy
from pipeline.salesforce.retry import classify

URL = "https://127.0.0.1/services/data/v59.0/query/"


def general(status: int) -> SalesforceGeneralError:
    return SalesforceGeneralError(URL, status, "query", [{"errorCode": "X", "message": "m"}])


def limit_exceeded() -> SalesforceRefusedRequest:
    body = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    return SalesforceRefusedRequest(URL, 403, "query", body)


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (requests.exceptions.ConnectionError("dropped"), Failure.TRANSIENT),
        (requests.exceptions.ConnectTimeout("connect"), Failure.TRANSIENT),
        (requests.exceptions.ReadTimeout("read"), Failure.TRANSIENT),
        (requests.exceptions.ChunkedEncodingError("mid-body"), Failure.TRANSIENT),
        (general(500), Failure.TRANSIENT),
        (general(502), Failure.TRANSIENT),
        (general(503), Failure.TRANSIENT),
        (general(504), Failure.TRANSIENT),
        (SalesforceExpiredSession(URL, 401, "query", []), Failure.EXPIRED_SESSION),
        (SalesforceOperationError("Job failure. Response content: x"), Failure.JOB_FAILED),
        (requests.exceptions.SSLError("certificate verify failed"), Failure.PERMANENT),
        (SalesforceMalformedRequest(URL, 400, "query", []), Failure.PERMANENT),
        (limit_exceeded(), Failure.PERMANENT),
        (SalesforceResourceNotFound(URL, 404, "query", []), Failure.PERMANENT),
        (general(409), Failure.PERMANENT),
        (SalesforceAuthenticationFailed("INVALID_LOGIN", "Invalid username"), Failure.PERMANENT),
        (ValueError("bug"), Failure.PERMANENT),
    ],
)
def test_classify(failure: BaseException, kind: Failure):
    assert classify(failure) is kind


class Script:
    """An operation that raises the given failures in turn, then returns 'done'."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def policy(sleeps: list[float], jitter: Callable[[], float] = lambda: 1.0, **kw) -> RetryPolicy:
    return RetryPolicy(sleep=sleeps.append, jitter=jitter, **kw)


def test_transient_failures_are_retried_with_growing_waits():
    sleeps: list[float] = []
    retried: list[tuple[str, int]] = []
    script = Script(general(503), requests.exceptions.ConnectionError(), general(500))
    result = policy(sleeps, base_delay=0.5).run(
        script,
        classify=classify,
        on_retry=lambda exc, attempt: retried.append((type(exc).__name__, attempt)),
    )
    assert result == "done"
    assert script.calls == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert retried == [
        ("SalesforceGeneralError", 1),
        ("ConnectionError", 2),
        ("SalesforceGeneralError", 3),
    ]


def test_the_last_failure_is_raised_unchanged_when_attempts_run_out():
    sleeps: list[float] = []
    last = general(503)
    script = Script(general(500), general(502), last, general(504))
    with pytest.raises(SalesforceGeneralError) as failure:
        policy(sleeps, attempts=3).run(script, classify=classify)
    assert failure.value is last
    assert script.calls == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "failure",
    [
        SalesforceMalformedRequest(URL, 400, "query", []),
        limit_exceeded(),
        SalesforceResourceNotFound(URL, 404, "query", []),
        requests.exceptions.SSLError("certificate verify failed"),
        SalesforceOperationError("Job failure"),
    ],
)
def test_permanent_failures_are_not_retried(failure: BaseException):
    sleeps: list[float] = []
    script = Script(failure)
    with pytest.raises(type(failure)):
        policy(sleeps).run(script, classify=classify)
    assert script.calls == 1
    assert sleeps == []


def test_an_expired_session_logs_in_again_and_retries_without_waiting():
    sleeps: list[float] = []
    logins: list[int] = []
    retried: list[int] = []
    script = Script(SalesforceExpiredSession(URL, 401, "query", []))
    result = policy(sleeps).run(
        script,
        classify=classify,
        on_expired=lambda: logins.append(1),
        on_retry=lambda exc, attempt: retried.append(attempt),
    )
    assert result == "done"
    assert (script.calls, logins, retried, sleeps) == (2, [1], [1], [])


def test_an_expired_session_without_a_way_to_log_in_is_not_retried():
    script = Script(SalesforceExpiredSession(URL, 401, "query", []))
    with pytest.raises(SalesforceExpiredSession):
        policy([]).run(script, classify=classify)
    assert script.calls == 1


def test_what_the_login_raises_ends_the_run_and_no_retry_is_reported():
    class CannotLogIn(Exception):
        pass

    def refuse() -> None:
        raise CannotLogIn("a direct session cannot log in again")

    retried: list[int] = []
    script = Script(SalesforceExpiredSession(URL, 401, "query", []))
    with pytest.raises(CannotLogIn):
        policy([]).run(
            script, classify=classify, on_expired=refuse, on_retry=lambda e, a: retried.append(a)
        )
    assert (script.calls, retried) == (1, [])


def test_a_caller_chooses_which_kinds_it_retries_at_its_level():
    sleeps: list[float] = []
    jobs = Script(SalesforceOperationError("Job failure"), SalesforceOperationError("again"))
    assert policy(sleeps).run(jobs, classify=classify, retry_on={Failure.JOB_FAILED}) == "done"
    assert jobs.calls == 3
    transient = Script(general(503))
    with pytest.raises(SalesforceGeneralError):
        policy(sleeps).run(transient, classify=classify, retry_on={Failure.JOB_FAILED})
    assert transient.calls == 1


def test_waits_are_capped_by_max_delay():
    retry = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert [retry.ceiling(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_full_jitter_waits_anywhere_between_zero_and_the_ceiling():
    draws = iter([0.0, 0.25, 0.999])
    retry = RetryPolicy(base_delay=2.0, max_delay=30.0, jitter=lambda: next(draws))
    assert [retry.delay(3), retry.delay(3), retry.delay(3)] == [0.0, 2.0, pytest.approx(7.992)]
    real = RetryPolicy(base_delay=0.5, max_delay=3.0)
    assert all(0 <= real.delay(n) <= real.ceiling(n) for n in range(1, 10) for _ in range(50))


def test_one_attempt_means_no_retry_and_zero_attempts_are_refused():
    script = Script(general(503))
    with pytest.raises(SalesforceGeneralError):
        policy([], attempts=1).run(script, classify=classify)
    assert script.calls == 1
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def test_interrupts_are_never_swallowed():
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        policy([]).run(interrupted, classify=classify)

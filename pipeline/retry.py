"""One retry policy for every API client: how many tries, and how long to wait before each.

Each API says what its failures mean (`pipeline.salesforce.retry.classify`); the policy decides,
from that, whether and when to try again. The m3ter client uses the same schedule around its
own loop, which also honours `Retry-After`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

T = TypeVar("T")


class Failure(Enum):
    """What a failed call means for trying it again."""

    TRANSIENT = "transient"  # the same call may well succeed after a pause
    EXPIRED_SESSION = "expired_session"  # succeeds after logging in again
    JOB_FAILED = "job_failed"  # a Bulk API job ended Failed/Aborted: only a new job can help
    PERMANENT = "permanent"  # the same call will fail the same way


REQUEST_FAILURES = frozenset({Failure.TRANSIENT, Failure.EXPIRED_SESSION})


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `attempts` tries with exponential back-off and full jitter between them.

    The n-th retry waits a uniform random time in `[0, min(max_delay, base_delay * 2**(n-1))]`
    (full jitter spreads concurrent clients apart after a shared outage). An expired session is
    retried at once after logging in again: waiting would not help it.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def ceiling(self, retry: int) -> float:
        """The longest wait before the `retry`-th retry (1-based)."""
        return min(self.max_delay, self.base_delay * 2 ** (retry - 1))

    def delay(self, retry: int) -> float:
        return self.jitter() * self.ceiling(retry)

    def run(
        self,
        operation: Callable[[], T],
        *,
        on_retry: Callable[[BaseException, int], None] | None = None,
        on_expired: Callable[[], None] | None = None,
        classify: Callable[[BaseException], Failure],
        retry_on: Collection[Failure] = REQUEST_FAILURES,
    ) -> T:
        """Call `operation` until it succeeds, a failure outside `retry_on` occurs, or attempts
        run out; the last failure is re-raised unchanged. `classify` says what a failure of
        this API means.

        `on_expired` renews the session before an expired-session retry (whatever it raises ends
        the run); without it an expired session is not retried. `on_retry(failure, attempt)` is
        told about each retry before it happens (attempt = the number of the attempt that failed).
        """
        attempt = 1
        while True:
            try:
                return operation()
            except Exception as exc:
                kind = classify(exc)
                retryable = kind in retry_on and (
                    kind is not Failure.EXPIRED_SESSION or on_expired is not None
                )
                if not retryable or attempt >= self.attempts:
                    raise
                if kind is Failure.EXPIRED_SESSION:
                    assert on_expired is not None
                    on_expired()
                    if on_retry is not None:
                        on_retry(exc, attempt)
                else:
                    if on_retry is not None:
                        on_retry(exc, attempt)
                    self.sleep(self.delay(attempt))
                attempt += 1

"""The per-org limit: a fixed window per wall-clock second, answered with 429 and Retry-After."""

from __future__ import annotations

import m3ter
import pytest

from pipeline.sandbox.m3ter.ratelimit import RateLimiter
from tests.sandbox.m3ter.conftest import StartM3ter


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_limit_admits_that_many_requests_per_second():
    limiter = RateLimiter(3, clock=Clock(100.25))
    assert [limiter.acquire("org") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("org") == pytest.approx(0.75)


def test_a_refused_caller_waits_for_the_rest_of_the_second():
    clock = Clock(100.9)
    limiter = RateLimiter(1, clock=clock)
    limiter.acquire("org")
    assert limiter.acquire("org") == pytest.approx(0.1)
    clock.now = 101.0
    assert limiter.acquire("org") is None


def test_each_key_has_its_own_window():
    limiter = RateLimiter(1, clock=Clock(5.0))
    assert limiter.acquire(("org", "config")) is None
    assert limiter.acquire(("org", "ingest")) is None
    assert limiter.acquire(("org", "config")) is not None


def test_a_fractional_limit_counts_whole_requests():
    assert RateLimiter(2.7).limit == 2
    assert RateLimiter(0.5).limit == 1


def test_over_the_limit_the_org_gets_429_with_retry_after(start_m3ter: StartM3ter):
    with start_m3ter(rate_limit_per_second=5) as sandbox:
        session = sandbox.authed()
        answers = [session.get(sandbox.org_url("products")) for _ in range(30)]
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["Retry-After"] == "1"
        assert refused.json() == {
            "message": "Too Many Requests: the organization's limit of 5 "
            "requests per second was exceeded"
        }
        assert answers[0].status_code == 200


def test_token_requests_do_not_count_against_the_org_limit(start_m3ter: StartM3ter):
    with start_m3ter(rate_limit_per_second=2) as sandbox:
        session = sandbox.session()
        for _ in range(10):
            sandbox.token(session)
        assert not any(c["status"] == 429 for c in sandbox.counters()["counters"])


def test_the_sdk_retries_a_429_after_the_second_is_over(start_m3ter: StartM3ter):
    with start_m3ter(rate_limit_per_second=2) as sandbox:
        client = sandbox.client(max_retries=3)
        for _ in range(5):
            client.products.list()
        counts = {(c["path"], c["status"]): c["count"] for c in sandbox.counters()["counters"]}
        assert counts[("/organizations/{orgId}/products", 200)] == 5
        assert counts[("/organizations/{orgId}/products", 429)] >= 1


def test_with_the_limit_off_nothing_is_refused(start_m3ter: StartM3ter):
    with start_m3ter(rate_limit_per_second=None) as sandbox:
        session = sandbox.authed()
        assert {session.get(sandbox.org_url("products")).status_code for _ in range(80)} == {200}


def test_a_429_is_m3ter_shaped(start_m3ter: StartM3ter):
    with start_m3ter(rate_limit_per_second=1) as sandbox:
        client = sandbox.client(max_retries=0)
        with pytest.raises(m3ter.RateLimitError) as failure:
            for _ in range(5):
                client.products.list()
        assert failure.value.response.headers["Retry-After"] == "1"
        assert set(failure.value.body) == {"message"}  # type: ignore[arg-type]

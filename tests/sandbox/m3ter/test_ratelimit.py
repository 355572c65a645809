"""m3ter's two limits: per org, a fixed window per wall-clock second; per source IP, a rolling
5-minute window. Both are answered with a 429 that names no `Retry-After`."""

from __future__ import annotations

import m3ter
import pytest

from pipeline.sandbox.m3ter.ratelimit import RateLimiter, RollingLimiter
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


def test_over_the_limit_the_org_gets_429_without_retry_after(start_m3ter: StartM3ter):
    with start_m3ter(rate_limit_per_second=5) as sandbox:
        session = sandbox.authed()
        answers = [session.get(sandbox.org_url("products")) for _ in range(30)]
        refused = next(a for a in answers if a.status_code == 429)
        assert "Retry-After" not in refused.headers
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
        assert "Retry-After" not in failure.value.response.headers
        assert set(failure.value.body) == {"message"}  # type: ignore[arg-type]


def test_a_rolling_window_admits_the_cap_then_refuses_until_old_requests_leave():
    clock = Clock(1000.5)
    limiter = RollingLimiter(3, window=10, clock=clock)
    assert [limiter.acquire("ip") for _ in range(3)] == [None, None, None]
    assert limiter.acquire("ip") == pytest.approx(9.5)
    clock.now = 1009.9
    assert limiter.acquire("ip") is not None
    clock.now = 1010.0
    assert limiter.acquire("ip") is None  # second 1000 has left the window


def test_refused_requests_keep_a_rolling_window_full():
    clock = Clock(1000.0)
    limiter = RollingLimiter(3, window=10, clock=clock)
    for _ in range(3):
        limiter.acquire("ip")
    clock.now = 1005.0
    assert [limiter.acquire("ip") for _ in range(3)] != [None] * 3
    clock.now = 1010.0  # the admitted three have left; the three refused at 1005 have not
    assert limiter.acquire("ip") is not None


def test_a_rolling_window_drains_as_its_seconds_pass():
    clock = Clock(0.0)
    limiter = RollingLimiter(2, window=5, clock=clock)
    limiter.acquire("ip")
    clock.now = 3.0
    limiter.acquire("ip")
    clock.now = 5.0
    assert limiter.acquire("ip") is None  # the request of second 0 has left the window


def test_the_source_ip_limit_refuses_every_caller_from_it(start_m3ter: StartM3ter):
    with start_m3ter(rate_limit_per_second=None, ip_limit=12, ip_window_seconds=60) as sandbox:
        session = sandbox.authed()  # the token request counts: it goes to the same host
        answers = [session.get(sandbox.org_url("products")).status_code for _ in range(14)]
        assert answers.count(200) == 11 and answers[-1] == 429
        refused = session.get(sandbox.org_url("meters"))
        assert refused.status_code == 429 and "Retry-After" not in refused.headers
        assert "source IP" in refused.json()["message"]

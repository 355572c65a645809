"""Request counters: counts per (method, pattern, status), and what counts as a write."""

from __future__ import annotations

from pipeline.sandbox.m3ter.counters import RequestCounters, Write


def test_requests_are_counted_per_method_pattern_and_status():
    counters = RequestCounters()
    counters.add("GET", "/organizations/{orgId}/plans", 200, 0.0, 0.1)
    counters.add("GET", "/organizations/{orgId}/plans", 200, 0.0, 0.1)
    counters.add("GET", "/organizations/{orgId}/plans", 429, 0.0, 0.1)
    assert counters.snapshot()["counters"] == [
        {"method": "GET", "path": "/organizations/{orgId}/plans", "status": 200, "count": 2},
        {"method": "GET", "path": "/organizations/{orgId}/plans", "status": 429, "count": 1},
    ]


def test_writes_are_org_calls_that_change_something_not_token_requests():
    counters = RequestCounters()
    counters.add("POST", "/oauth/token", 200, 0.0, 0.1)
    counters.add("GET", "/organizations/{orgId}/plans", 200, 0.0, 0.1)
    counters.add("PUT", "/organizations/{orgId}/plans/{id}", 400, 0.0, 0.1)
    counters.add("DELETE", "/organizations/{orgId}/plans/{id}", 200, 0.0, 0.1)
    summary = counters.snapshot()
    assert (summary["requests"], summary["writes"]) == (4, 2)


def test_the_request_log_keeps_each_write_with_when_it_arrived_and_was_answered():
    counters = RequestCounters()
    counters.add("GET", "/organizations/{orgId}/plans", 200, 1.0, 1.1)
    counters.add("POST", "/organizations/{orgId}/plans", 200, 2.0, 2.5)
    counters.add("POST", "/oauth/token", 200, 3.0, 3.1)
    assert counters.writes() == [Write("POST", "/organizations/{orgId}/plans", 200, 2.0, 2.5)]
    counters.reset()
    assert counters.writes() == []

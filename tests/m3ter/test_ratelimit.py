"""The client's pacing: the token bucket (even pacing, bursts, no limit at 0, fair across
threads) and the rolling window of the per-IP count."""

from __future__ import annotations

import threading
import time

import pytest

from pipeline.m3ter.ratelimit import RollingWindow, TokenBucket


class FakeTime:
    """A clock that only moves when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_bucket_spaces_requests_at_its_rate():
    fake = FakeTime()
    bucket = TokenBucket(10, clock=fake.clock, sleep=fake.sleep)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.1, 0.1])


def test_a_burst_passes_at_once_then_paces():
    fake = FakeTime()
    bucket = TokenBucket(4, burst=3, clock=fake.clock, sleep=fake.sleep)
    assert [bucket.acquire() for _ in range(4)] == pytest.approx([0, 0, 0, 0.25])


def test_an_idle_bucket_refills_only_up_to_its_burst():
    fake = FakeTime()
    bucket = TokenBucket(2, burst=2, clock=fake.clock, sleep=fake.sleep)
    fake.now += 60
    assert [bucket.acquire() for _ in range(3)] == pytest.approx([0, 0, 0.5])


def test_a_rate_of_zero_never_waits():
    fake = FakeTime()
    bucket = TokenBucket(0, clock=fake.clock, sleep=fake.sleep)
    assert sum(bucket.acquire() for _ in range(1000)) == 0
    assert fake.slept == []


def test_threads_sharing_a_bucket_are_paced_together():
    bucket = TokenBucket(200)
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            bucket.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 40
    assert stamps[-1] - stamps[0] >= 39 / 200 - 0.01


@pytest.mark.parametrize("rate, burst", [(-1, 1), (float("inf"), 1), (5, 0)])
def test_a_bad_rate_or_burst_is_refused(rate: float, burst: int):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_a_window_lets_its_limit_through_at_once():
    fake = FakeTime()
    window = RollingWindow(3, 60, clock=fake.clock, sleep=fake.sleep)
    assert [window.acquire() for _ in range(3)] == [0, 0, 0]


def test_one_request_too_many_waits_until_the_oldest_leaves_the_window():
    fake = FakeTime()
    window = RollingWindow(3, 60, clock=fake.clock, sleep=fake.sleep)
    window.acquire()
    fake.now += 10
    window.acquire()
    window.acquire()
    assert window.acquire() == pytest.approx(50)
    assert window.acquire() == pytest.approx(10)  # the second request, at +10, leaves next


def test_no_window_ever_holds_more_than_the_limit():
    fake = FakeTime()
    window = RollingWindow(5, 10, clock=fake.clock, sleep=fake.sleep)
    times = []
    for _ in range(40):
        window.acquire()
        times.append(fake.now)
        fake.now += 0.7
    assert all(sum(1 for u in times if t - 10 < u <= t) <= 5 for t in times)


def test_a_window_needs_a_limit_and_a_length():
    with pytest.raises(ValueError):
        RollingWindow(0, 10)
    with pytest.raises(ValueError):
        RollingWindow(5, 0)

"""m3ter's per-organisation request limit: 50 requests per second, then 429 for the rest of it.

m3ter documents the org limit as "50 req/s across all IPs", answered with 429 for "the rest of the
current second", so this is a fixed window per wall-clock second, not a token bucket: a client
that bursts 50 requests early in a second waits out the remainder. The config API and the ingest
API have separate limits of the same size, so callers key windows by (org, api).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable


class RateLimiter:
    """Counts requests per key in one-second windows aligned to the clock's whole seconds."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.time) -> None:
        # A limit counts whole requests; a fractional setting is rounded down (at least 1).
        self.limit = max(1, math.floor(per_second))
        self._clock = clock
        self._windows: dict[Hashable, tuple[int, int]] = {}  # key -> (second, count)
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> float | None:
        """None if the request may pass, else the seconds left in the current window."""
        now = self._clock()
        second = math.floor(now)
        with self._lock:
            window, count = self._windows.get(key, (second, 0))
            if window != second:
                count = 0
            if count >= self.limit:
                return second + 1 - now
            self._windows[key] = (second, count + 1)
            return None


class RollingLimiter:
    """At most `limit` requests per key in any rolling `window` seconds: m3ter's per-source-IP
    limit (20,000 per 5 minutes on the Config API, 5,000 on ingest).

    m3ter refuses "until the 5-minute count drops below the cap". [assume: pessimistic] refused
    requests count too, as a gateway's rate rule counts every request it sees: a client that
    keeps knocking keeps the window full. Counts are kept per whole second, so memory stays at
    `window` buckets per key however fast requests come.
    """

    def __init__(
        self, limit: int, window: float = 300.0, clock: Callable[[], float] = time.time
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rolling limit needs limit >= 1 and a positive window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._buckets: dict[Hashable, dict[int, int]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> float | None:
        """Count one request; None if it may pass, else the seconds until the window drains
        below the cap."""
        now = self._clock()
        second = math.floor(now)
        oldest = math.floor(now - self.window) + 1
        with self._lock:
            buckets = self._buckets.setdefault(key, {})
            for stale in [s for s in buckets if s < oldest]:
                del buckets[stale]
            seen = sum(buckets.values())
            buckets[second] = buckets.get(second, 0) + 1
            if seen < self.limit:
                return None
            # Wait until enough old seconds leave the window for the count to drop below the cap.
            excess = seen + 1 - self.limit
            for stamp in sorted(buckets):
                excess -= buckets[stamp]
                if excess <= 0:
                    return max(0.0, stamp + self.window - now)
            return self.window

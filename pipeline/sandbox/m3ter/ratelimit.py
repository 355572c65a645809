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

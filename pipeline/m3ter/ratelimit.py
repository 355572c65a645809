"""Client-side pacing, so the pipeline stays under m3ter's limits instead of finding them through
429s: a token bucket for the per-org rate, a rolling window for the per-source-IP count.

m3ter refuses the rest of a wall-clock second once an org has made 50 requests in it, whichever
of its callers made them. Pacing requests evenly at a lower rate (burst 1 by default) keeps every
such second under the limit however many threads share the bucket.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`; `rate=0` means no limit.

    `acquire()` reserves the next token under a lock and sleeps outside it, so waiting threads
    are served in the order they asked and a sleeping thread never blocks the others' bookkeeping.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not math.isfinite(rate) or rate < 0:
            raise ValueError("TokenBucket rate must be 0 (unlimited) or a positive number")
        if burst < 1:
            raise ValueError("TokenBucket burst must be at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)  # negative: tokens already promised to waiting callers
        self._stamp = clock()

    def acquire(self) -> float:
        """Take one token, blocking until it is due; returns the seconds waited."""
        if self.rate == 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


class RollingWindow:
    """At most `limit` requests in any `window` seconds: m3ter's per-source-IP limit (20,000 per
    rolling 5 minutes), kept on the client's side so that it never meets the limit's 429, which
    lasts until the window drains.

    The times of the last `limit` requests are kept; a request that would be one too many waits
    until the oldest of them leaves the window. Reservations are taken in order under a lock and
    waited out outside it, as `TokenBucket` does.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or not math.isfinite(window) or window <= 0:
            raise ValueError("RollingWindow needs limit >= 1 and a positive window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._times: deque[float] = deque(maxlen=limit)

    def acquire(self) -> float:
        """Take a place in the window, blocking until there is one; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            start = now
            if self._times:
                start = max(start, self._times[-1])
            if len(self._times) == self.limit:
                start = max(start, self._times[0] + self.window)
            self._times.append(start)
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return max(0.0, wait)

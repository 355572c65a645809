"""A client-side token bucket, so the pipeline stays under m3ter's per-org limit instead of
finding it through 429s.

m3ter refuses the rest of a wall-clock second once an org has made 50 requests in it, whichever
of its callers made them. Pacing requests evenly at a lower rate (burst 1 by default) keeps every
such second under the limit however many threads share the bucket.
"""

from __future__ import annotations

import math
import threading
import time
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

"""Request counters by method, route pattern and status, so a test can say what a run called.

Patterns are the routes as declared (`PUT /organizations/{orgId}/pricings/{id}`), not raw paths,
so counts stay few and readable; a path no route matches counts under `(unmatched)`, and a
connection the `drop` fault closed counts with status 0.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNMATCHED = "(unmatched)"
DROPPED = 0
WRITES_KEPT = 1_000_000  # the request log keeps this many writes, the latest


@dataclass(frozen=True)
class Write:
    """One write to an org object: when it arrived and when it was answered (epoch seconds)."""

    method: str
    pattern: str
    status: int
    started: float
    ended: float

    @staticmethod
    def is_write(method: str, pattern: str) -> bool:
        return method in WRITE_METHODS and pattern.startswith("/organizations/")


class RequestCounters:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, int]] = Counter()
        self._writes: deque[Write] = deque(maxlen=WRITES_KEPT)
        self._lock = threading.Lock()

    def add(self, method: str, pattern: str, status: int, started: float, ended: float) -> None:
        with self._lock:
            self._counts[(method, pattern, status)] += 1
            if Write.is_write(method, pattern):
                self._writes.append(Write(method, pattern, status, started, ended))

    def writes(self) -> list[Write]:
        """The request log of writes, oldest first: who wrote when, for tests of concurrency."""
        with self._lock:
            return list(self._writes)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._writes.clear()

    def snapshot(self) -> dict[str, Any]:
        """All counts, plus totals: every request, and writes to org objects (not token calls)."""
        with self._lock:
            items = sorted(self._counts.items())
        return {
            "requests": sum(n for _, n in items),
            "writes": sum(n for (m, p, _), n in items if Write.is_write(m, p)),
            "counters": [
                {"method": m, "path": p, "status": s, "count": n} for (m, p, s), n in items
            ],
        }

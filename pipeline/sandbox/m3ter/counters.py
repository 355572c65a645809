"""Request counters by method, route pattern and status, so a test can say what a run called.

Patterns are the routes as declared (`PUT /organizations/{orgId}/pricings/{id}`), not raw paths,
so counts stay few and readable; a path no route matches counts under `(unmatched)`, and a
connection the `drop` fault closed counts with status 0.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNMATCHED = "(unmatched)"
DROPPED = 0


class RequestCounters:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, int]] = Counter()
        self._lock = threading.Lock()

    def add(self, method: str, pattern: str, status: int) -> None:
        with self._lock:
            self._counts[(method, pattern, status)] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, Any]:
        """All counts, plus totals: every request, and writes to org objects (not token calls)."""
        with self._lock:
            items = sorted(self._counts.items())
        return {
            "requests": sum(n for _, n in items),
            "writes": sum(
                n
                for (method, pattern, _), n in items
                if method in WRITE_METHODS and pattern.startswith("/organizations/")
            ),
            "counters": [
                {"method": m, "path": p, "status": s, "count": n} for (m, p, s), n in items
            ],
        }

"""What an API client has spent: snapshots that subtract, and the thread-safe tally behind them.

Each client names its own counters as a frozen dataclass deriving from `Snapshot`; subtracting two
snapshots gives what the calls between them cost, which is what asset metadata reports.
"""

from __future__ import annotations

import threading
from dataclasses import fields
from typing import Generic, Self, TypeVar


class Snapshot:
    """Base of frozen dataclasses of integer counters."""

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def __sub__(self, other: Self) -> Self:
        return type(self)(**{k: v - getattr(other, k) for k, v in self.as_dict().items()})

    def __add__(self, other: Self) -> Self:
        return type(self)(**{k: v + getattr(other, k) for k, v in self.as_dict().items()})


S = TypeVar("S", bound=Snapshot)


class Tally(Generic[S]):
    """Running totals of one kind of `Snapshot`, added to from many threads."""

    def __init__(self, kind: type[S]) -> None:
        self._kind = kind
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((f.name for f in fields(kind)), 0)  # type: ignore[arg-type]

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._counts[name] += amount

    def snapshot(self) -> S:
        with self._lock:
            return self._kind(**self._counts)

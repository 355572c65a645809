"""What the reliability suite tried and what it lost, summed over a session and printed at its end.

Tests record each fault, crash and bad input they survived, and every record lost or object
duplicated they counted (the promise is zero of both); the summary is printed after the run and
written to `test-artifacts/reliability/summary.json`.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SUMMARY_FILE = (
    Path(__file__).resolve().parents[2] / "test-artifacts" / "reliability" / "summary.json"
)
LINES = (
    ("faults", "faults survived"),
    ("lost_answers", "write answers lost after m3ter applied them"),
    ("crashes", "crashes survived"),
    ("bad_inputs", "bad inputs tried"),
    ("lost", "records lost"),
    ("duplicates", "duplicates in m3ter"),
    ("rerun_writes", "writes by reruns with nothing changed"),
)


@dataclass
class Ledger:
    counts: Counter[str] = field(default_factory=Counter)
    cases: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, case: str, count: int = 1) -> None:
        """Count `count` of `kind` (one of LINES) for the named case."""
        if kind not in dict(LINES):
            raise ValueError(f"unknown ledger kind {kind!r}")
        with self._lock:
            self.counts[kind] += count
            self.cases.setdefault(kind, []).append(case)

    def tried(self) -> bool:
        return any(self.counts[kind] for kind in ("faults", "crashes", "bad_inputs"))

    def lines(self) -> list[str]:
        return [f"{label}: {self.counts[kind]}" for kind, label in LINES]

    def write(self, path: Path = SUMMARY_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = {kind: self.counts[kind] for kind, _ in LINES}
        path.write_text(json.dumps({"summary": summary, "cases": self.cases}, indent=2) + "\n")


LEDGER = Ledger()

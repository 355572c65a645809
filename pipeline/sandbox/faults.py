"""Deterministic fault injection for the sandbox servers.

Each request the server sees draws one number from a generator seeded at start, so a client that
sends the same requests in the same order meets the same faults in every run.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

from aiohttp import web

# New kinds go at the end: the draw for a given seed then keeps meeting the same earlier kinds.
REQUEST_FAULTS = ("http500", "http503", "drop", "slow", "expire", "http502", "http504")


@dataclass(frozen=True)
class FaultConfig:
    """Rates (0..1) per fault kind, the seed, and how slow a slow answer is."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    slow_seconds: float = 2.0

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(REQUEST_FAULTS) - {"bulk_fail"}
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if any(not 0 <= r <= 1 for r in self.rates.values()):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(self.rates.get(k, 0.0) for k in REQUEST_FAULTS) > 1:
            raise ValueError("request fault rates add up to more than 1")

    @classmethod
    def parse(cls, text: str, seed: int = 0, slow_seconds: float = 2.0) -> FaultConfig:
        """`http500=0.05,drop=0.02` as typed on the command line."""
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault {part!r} is not KIND=RATE")
            rates[kind.strip()] = float(value)
        return cls(rates=rates, seed=seed, slow_seconds=slow_seconds)

    @property
    def enabled(self) -> bool:
        return any(self.rates.values())


class FaultPlan:
    """Hands out the next fault for each request (or bulk job), in arrival order."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._requests = random.Random(config.seed)  # noqa: S311 - reproducible, not secret
        self._jobs = random.Random(config.seed + 1)  # noqa: S311
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}

    def next_request_fault(self) -> str | None:
        with self._lock:
            draw = self._requests.random()
            edge = 0.0
            for kind in REQUEST_FAULTS:
                edge += self.config.rates.get(kind, 0.0)
                if draw < edge:
                    self.injected[kind] = self.injected.get(kind, 0) + 1
                    return kind
            return None

    async def inject(self, request: web.Request) -> str | None:
        """Draw this request's fault and carry out the ones that need no answer.

        A dropped connection is aborted here and a slow answer delayed here; the kinds a server
        answers in its own error shape (`http5xx`, `expire`) are returned to it.
        """
        fault = self.next_request_fault() if self.config.enabled else None
        if fault == "drop":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        if fault == "slow":
            await asyncio.sleep(self.config.slow_seconds)
            return None
        return fault

    def next_job_fails(self) -> bool:
        with self._lock:
            fails = self._jobs.random() < self.config.rates.get("bulk_fail", 0.0)
            if fails:
                self.injected["bulk_fail"] = self.injected.get("bulk_fail", 0) + 1
            return fails

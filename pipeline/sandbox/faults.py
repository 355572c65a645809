"""Deterministic fault injection for the sandbox servers.

Each request the server sees draws one number from a generator seeded at start, so a client that
sends the same requests in the same order meets the same faults in every run. A fault may be
scoped to one collection (`lost_answer@commitments=0.2`): requests elsewhere never meet it.
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import dataclass, field

from aiohttp import web

# New kinds go at the end: the draw for a given seed then keeps meeting the same earlier kinds.
REQUEST_FAULTS = (
    "http500",
    "http503",
    "drop",
    "slow",
    "expire",
    "http502",
    "http504",
    "lost_answer",
)
# Kinds that strike a write only (a read has no answer worth losing after it was applied).
WRITE_FAULTS = frozenset({"lost_answer"})
# Kinds that strike a request made without a token (a token request): no token to expire.
TOKENLESS_FAULTS = frozenset(REQUEST_FAULTS) - WRITE_FAULTS - {"expire"}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JOB_FAULTS = frozenset({"bulk_fail"})


def _split(entry: str) -> tuple[str, str | None]:
    kind, _, scope = entry.partition("@")
    return kind, scope or None


@dataclass(frozen=True)
class FaultConfig:
    """Rates (0..1) per fault kind (optionally `kind@collection`), the seed, how slow is slow."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    slow_seconds: float = 2.0

    def __post_init__(self) -> None:
        kinds = {_split(entry)[0] for entry in self.rates}
        unknown = kinds - set(REQUEST_FAULTS) - JOB_FAULTS
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if any(not 0 <= r <= 1 for r in self.rates.values()):
            raise ValueError("fault rates must be between 0 and 1")
        scopes = {_split(entry)[1] for entry in self.rates}
        for scope in scopes:
            total = sum(
                rate
                for entry, rate in self.rates.items()
                if _split(entry)[0] in REQUEST_FAULTS and _split(entry)[1] in (None, scope)
            )
            if total > 1 + 1e-9:
                raise ValueError("request fault rates add up to more than 1")

    @classmethod
    def parse(cls, text: str, seed: int = 0, slow_seconds: float = 2.0) -> FaultConfig:
        """`http500=0.05,drop=0.02,lost_answer@commitments=0.2` as typed on the command line."""
        rates: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            kind, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault {part!r} is not KIND=RATE or KIND@COLLECTION=RATE")
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
        # Faults carried out, by entry as configured (`drop`, `lost_answer@accounts`).
        self.injected: dict[str, int] = {}
        order = {kind: i for i, kind in enumerate(REQUEST_FAULTS)}
        self._entries = sorted(
            ((entry, rate) for entry, rate in config.rates.items() if rate > 0),
            key=lambda item: (order.get(_split(item[0])[0], len(order)), item[0]),
        )

    def next_request_fault(
        self,
        scope: str | None = None,
        write: bool = False,
        kinds: frozenset[str] = frozenset(REQUEST_FAULTS),
    ) -> str | None:
        """The fault kind this request meets, if any, among `kinds`; `scope` is the collection
        it addresses."""
        with self._lock:
            draw = self._requests.random()
            edge = 0.0
            for entry, rate in self._entries:
                kind, wanted = _split(entry)
                if kind not in kinds:
                    continue
                if (wanted is not None and wanted != scope) or (kind in WRITE_FAULTS and not write):
                    continue
                edge += rate
                if draw < edge:
                    self.injected[entry] = self.injected.get(entry, 0) + 1
                    return kind
            return None

    async def inject(
        self,
        request: web.Request,
        scope: str | None = None,
        kinds: frozenset[str] = frozenset(REQUEST_FAULTS),
    ) -> str | None:
        """Draw this request's fault and carry out the ones that need no answer.

        A dropped connection is aborted here and a slow answer delayed here; the kinds a server
        answers in its own error shape (`http5xx`, `expire`) and `lost_answer`, which strikes
        after the handler, are returned to it.
        """
        if not self.config.enabled:
            return None
        write = request.method in WRITE_METHODS
        fault = self.next_request_fault(scope, write=write, kinds=kinds)
        if fault == "drop":
            drop(request)
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


def drop(request: web.Request) -> None:
    """Close the connection without an answer."""
    assert request.transport is not None
    request.transport.abort()
    raise asyncio.CancelledError

"""Load 10,000 accounts into the m3ter sandbox under its 50 requests/s limit, then again unchanged.

Run: `uv run --frozen python -m tests.benchmarks.bench_load [--accounts 10000] [--more 2000]`

The m3ter sandbox runs in its own process (`m3sync sandbox up --only m3ter`, its limit at m3ter's
50 requests/s per org). A fresh warehouse gets a raw `account` partition generated in DuckDB SQL
(unique 18-character Ids), staged the real way by a one-mapping accounts set, and loaded by
`pipeline.load.run.load` in three runs, each read off the client's spend and the sandbox's
request counters (reset before each run):

1. the 10,000 accounts created by a client set to 48 requests/s, 8 threads;
2. the same 10,000 loaded again with no change, by the same client;
3. a second, smaller partition of new accounts (2,000 by default) created by a client at the
   default `M3terSettings` (20 requests/s, 4 threads).

The unchanged run goes second so that the org holds exactly the 10,000 the read target is
counted for (the loader reads the accounts by code, 100 to a request). Write rates are timed
from the first write sent to the last write answered, so the plan's list calls and the journal
are not in them; the run's calls/s over its whole wall time is shown beside.

Targets: at 48 requests/s, >= 45 requests/s sustained and zero 429 answers; at default settings,
zero 429 answers; the unchanged run 0 writes and at most ceil(10,000 / 100) + 20 reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import requests

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.run import LoadResult, load
from pipeline.m3ter.client import PAGE_SIZE, Find, M3terClient, M3terSpend
from pipeline.m3ter.settings import M3terSettings, sandbox_settings
from pipeline.mapping.compiler import CompiledEntity, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse
from tests.processes import sandbox_process
from tests.shipped import describe

SANDBOX_LIMIT = 50.0  # m3ter's requests/s per org, as the sandbox enforces it
TUNED_RATE, TUNED_CONCURRENCY = 48.0, 8
TARGET_SUSTAINED = 45.0
READ_SLACK = 20
FIRST, SECOND = "2024-05-01", "2024-05-02"
ACCOUNTS_MAPPING = """\
- name: Accounts
  object: Account
  fields:
    name: Name
    emailAddress: Billing_Email__c
"""


# --- staged accounts ---------------------------------------------------------------------------


def write_raw(warehouse: Warehouse, partition: str, first: int, count: int) -> None:
    """`count` raw Accounts numbered from `first`: Ids `001` + 12 digits + `AAA` (18 chars)."""
    con = duckdb.connect()
    try:
        warehouse.write_partition(
            con,
            raw_table(SourceObject("Account")),
            partition,
            f"""
            SELECT '001' || lpad(CAST(i AS VARCHAR), 12, '0') || 'AAA' AS "Id",
                   false AS "IsDeleted",
                   'Account ' || i AS "Name",
                   'billing+' || i || '@example.com' AS "Billing_Email__c",
                   TIMESTAMP '{partition} 10:00:00' AS _version_stamp,
                   '{partition}' AS _partition,
                   now()::TIMESTAMP AS _extracted_at
            FROM range({first}, {first + count}) t(i)
            """,
        )
    finally:
        con.close()


def accounts_entity(root: Path) -> CompiledEntity:
    directory = root / "mappings"
    directory.mkdir()
    (directory / "accounts.yaml").write_text(ACCOUNTS_MAPPING)
    return compile_mappings(load_mappings(directory), describe)["accounts"]


def prepare(
    warehouse: Warehouse, compiled: CompiledEntity, partition: str, first: int, count: int
) -> None:
    started = time.perf_counter()
    write_raw(warehouse, partition, first, count)
    result = stage(warehouse, compiled, [partition])
    print(
        f"staged accounts {partition}: {result.rows:,} rows ({result.rejected_rows} rejected) "
        f"in {time.perf_counter() - started:.2f} s",
        flush=True,
    )


# --- the client, timed -------------------------------------------------------------------------


class TimedClient(M3terClient):
    """The pipeline's client, noting when each write was sent and answered."""

    def __init__(self, settings: M3terSettings) -> None:
        super().__init__(settings)
        self.stamps: list[tuple[float, float, float]] = []  # (sent, answered, wall clock)
        self._stamp_lock = threading.Lock()

    def _timed(self, call: Any, *args: Any) -> dict[str, Any]:
        sent = time.monotonic()
        try:
            return call(*args)
        finally:
            with self._stamp_lock:
                self.stamps.append((sent, time.monotonic(), time.time()))

    def create(
        self, collection: str, body: Mapping[str, Any], find: Find | None = None
    ) -> dict[str, Any]:
        return self._timed(super().create, collection, body, find)

    def update(self, collection: str, object_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._timed(super().update, collection, object_id, body)

    def delete(self, collection: str, object_id: str) -> dict[str, Any]:
        return self._timed(super().delete, collection, object_id)


# --- the sandbox's counters --------------------------------------------------------------------


class Counters:
    """The sandbox's admin request counters (HTTP Basic, its own CA)."""

    def __init__(self, info: Mapping[str, str]) -> None:
        self.url = info["url"]
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = info["ca_file"]
        self.session.auth = (info["access_key_id"], info["api_secret"])

    def reset(self) -> None:
        self.session.post(f"{self.url}/admin/counters/reset", timeout=30).raise_for_status()

    def by_status(self) -> Counter[int]:
        """Requests to `/organizations/...` by status (token calls left out)."""
        answer = self.session.get(f"{self.url}/admin/counters", timeout=30)
        answer.raise_for_status()
        found: Counter[int] = Counter()
        for row in answer.json()["counters"]:
            if row["path"].startswith("/organizations/"):
                found[row["status"]] += row["count"]
        return found


# --- runs --------------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    result: LoadResult
    spend: M3terSpend
    statuses: Counter[int]
    write_seconds: float
    per_second: Counter[int]  # writes answered per wall-clock second

    @property
    def write_rate(self) -> float:
        return self.spend.writes / self.write_seconds if self.write_seconds else 0.0

    @property
    def call_rate(self) -> float:
        return self.spend.calls / self.result.seconds

    @property
    def full_seconds(self) -> list[int]:
        """Writes answered in each whole second of the run, the partial first and last left out."""
        seconds = sorted(self.per_second)
        return [self.per_second[s] for s in seconds[1:-1]]


def run(
    name: str,
    client: TimedClient,
    counters: Counters,
    warehouse: Warehouse,
    partition: str,
) -> Run:
    counters.reset()
    client.stamps.clear()
    before = client.spent()
    result = load(
        client, warehouse, "accounts", [partition], concurrency=client.settings.concurrency
    )
    spend = client.spent() - before
    statuses = counters.by_status()
    shown = dict(sorted(statuses.items()))
    stamps = list(client.stamps)
    write_seconds = max(a for _, a, _ in stamps) - min(s for s, _, _ in stamps) if stamps else 0.0
    per_second = Counter(int(wall) for _, _, wall in stamps)
    done = Run(name, result, spend, statuses, write_seconds, per_second)
    settings = client.settings
    print(
        f"\n{name} (client at {settings.rate_limit:g} requests/s, "
        f"{settings.concurrency} threads)\n"
        f"  outcomes {result.outcomes}; {result.seconds:.1f} s wall\n"
        f"  client: {spend.calls:,} calls = {spend.reads:,} reads + {spend.writes:,} writes; "
        f"{spend.throttled} answered 429, {spend.retries} retried, {spend.tokens} token calls\n"
        f"  sandbox: {sum(statuses.values()):,} org requests by status {shown}",
        flush=True,
    )
    if spend.writes:
        full = done.full_seconds
        print(
            f"  writes: {spend.writes:,} in {write_seconds:.1f} s from first sent to last answered "
            f"= {done.write_rate:.2f} writes/s; {done.call_rate:.2f} calls/s over the whole run\n"
            f"  writes answered per whole wall-clock second: min {min(full, default=0)}, "
            f"max {max(full, default=0)} over {len(full)} seconds",
            flush=True,
        )
    return done


# --- report ------------------------------------------------------------------------------------


def report(tuned: Run, unchanged: Run, default: Run, accounts: int) -> None:
    read_limit = math.ceil(accounts / PAGE_SIZE) + READ_SLACK
    rows = [
        (
            f"{TUNED_RATE:g}/s: requests/s sustained",
            f">= {TARGET_SUSTAINED:g}",
            f"{tuned.write_rate:.2f}",
            tuned.write_rate >= TARGET_SUSTAINED,
        ),
        (
            f"{TUNED_RATE:g}/s: 429 answers (client / sandbox)",
            "0",
            f"{tuned.spend.throttled} / {tuned.statuses[429]}",
            tuned.spend.throttled == 0 and tuned.statuses[429] == 0,
        ),
        (
            "defaults: 429 answers (client / sandbox)",
            "0",
            f"{default.spend.throttled} / {default.statuses[429]}",
            default.spend.throttled == 0 and default.statuses[429] == 0,
        ),
        ("unchanged: writes", "0", f"{unchanged.spend.writes}", unchanged.spend.writes == 0),
        (
            "unchanged: reads",
            f"<= {read_limit}",
            f"{unchanged.spend.reads}",
            unchanged.spend.reads <= read_limit,
        ),
    ]
    print("\nsummary")
    header = f"{'figure':<42} {'target':>8} {'measured':>10}  verdict"
    print(header)
    print("-" * len(header))
    for figure, target, measured, met in rows:
        print(f"{figure:<42} {target:>8} {measured:>10}  {'met' if met else 'NOT met'}")
    print(f"load average at the end: {load_average()}")


def load_average() -> str:
    """The machine is shared: the load average says how much of it this run had."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--more", type=int, default=2_000, help="new accounts at defaults")
    parser.add_argument("--root", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args()
    print(f"load average at the start: {load_average()}")
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        root = Path(tmp)
        warehouse = Warehouse(root / "warehouse")
        compiled = accounts_entity(root)
        prepare(warehouse, compiled, FIRST, 0, args.accounts)
        prepare(warehouse, compiled, SECOND, args.accounts, args.more)
        with sandbox_process(
            root / "sandbox", "--only", "m3ter", "--m3ter-rate-limit", f"{SANDBOX_LIMIT:g}"
        ) as (_, info):
            m3ter = info["m3ter"]
            print(f"m3ter sandbox at {m3ter['url']}, limit {SANDBOX_LIMIT:g} requests/s per org")
            counters = Counters(m3ter)
            settings = sandbox_settings(m3ter)
            tuned_settings = dataclasses.replace(
                settings, rate_limit=TUNED_RATE, concurrency=TUNED_CONCURRENCY
            )
            with TimedClient(tuned_settings) as client:
                tuned = run(
                    f"1. create {args.accounts:,} accounts ({FIRST})",
                    client,
                    counters,
                    warehouse,
                    FIRST,
                )
                unchanged = run(
                    f"2. the same {args.accounts:,} again, no change ({FIRST})",
                    client,
                    counters,
                    warehouse,
                    FIRST,
                )
            with TimedClient(settings) as client:
                default = run(
                    f"3. create {args.more:,} more accounts at default settings ({SECOND}; "
                    f"the org holds {args.accounts:,})",
                    client,
                    counters,
                    warehouse,
                    SECOND,
                )
        report(tuned, unchanged, default, args.accounts)


if __name__ == "__main__":
    main()

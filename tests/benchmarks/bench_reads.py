"""Reads in proportion to the change: a partition run against an m3ter organization of 1,000 and
of 100,000 accounts and account plans, beside a baseline that lists collections whole.

Run: `uv run --frozen python -m tests.benchmarks.bench_reads [--sizes 1000,100000] [--changes 100]`

For each size, m3ter's state is written directly (the sandbox's journal: the seeded catalogue
plus N accounts, one plan and N account plans that no staged row names), and the m3ter sandbox
starts on it in its own process (`m3sync sandbox up --only m3ter`, no rate limit in the way).
Then, on each side (the pipeline's `load` with its default `Current`, and the baseline: the same
`load` with `Current(whole=True)`, which lists every collection it touches whole, as a full
reconcile does), in a fresh copy of that state and a fresh warehouse:

1. set-up, not measured: a partition of `--changes` accounts and as many OrderItems, staged and
   loaded (accounts, plans, pricings, account plans);
2. a partition of `--changes` changed records: half the accounts renamed, and the OrderItems of
   the other half repriced;
3. a partition of one changed record: an OrderItem repriced.

Reads, writes and wall time of 2 and 3 are read off the client's spend. Targets: the read count
of a run does not depend on m3ter's size (within 5 reads between the sizes), at most 40 reads for
100 changes and 25 for 1, and the same writes as the baseline.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.current import Current
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.settings import sandbox_settings
from pipeline.mapping.compiler import CompiledSet, compile_mappings
from pipeline.mapping.files import load_mappings
from pipeline.sandbox.m3ter.seed import reference_configuration, seed_id
from pipeline.sandbox.m3ter.store import Store
from pipeline.staging.stage import stage
from pipeline.warehouse import Warehouse
from tests.load.conftest import ENTITIES, MAPPINGS
from tests.processes import sandbox_process
from tests.shipped import describe

DAYS = ("2024-03-01", "2024-03-02", "2024-03-03")
SIZE_SLACK, MANY_READS, ONE_READS = 5, 40, 25
# --- m3ter's state, written directly -------------------------------------------------------


def seed_state(path: Path, size: int) -> None:
    """The seeded catalogue, then `size` accounts and `size` account plans on one plan."""
    store = Store(path, actor="bench", seed=reference_configuration)
    store.close()
    now = "2024-01-01T00:00:00.000Z"
    audit = {"version": 1, "dtCreated": now, "dtLastModified": now}
    audit |= {"createdBy": "bench", "lastModifiedBy": "bench"}
    plan_id = str(uuid.uuid4())
    seq = 1_000_000
    with path.open("a") as journal:
        plan = {
            "id": plan_id,
            "planTemplateId": seed_id("plantemplates", "messaging_standard"),
            "name": "Background plan",
            "code": "background-plan",
            "customFields": {},
            **audit,
        }
        journal.write(json.dumps({"op": "put", "c": "plans", "seq": seq, "o": plan}) + "\n")
        for i in range(size):
            account_id = str(uuid.uuid4())
            account = {
                "id": account_id,
                "code": f"background-{i:07d}",
                "name": f"Background {i}",
                "emailAddress": f"bill{i}@background.example",
                "customFields": {},
                **audit,
            }
            account_plan = {
                "id": str(uuid.uuid4()),
                "accountId": account_id,
                "planId": plan_id,
                "startDate": now,
                "code": f"background-ap-{i:07d}",
                "customFields": {},
                **audit,
            }
            for collection, obj in (("accounts", account), ("accountplans", account_plan)):
                seq += 1
                record = {"op": "put", "c": collection, "seq": seq, "o": obj}
                journal.write(json.dumps(record) + "\n")


# --- the warehouse ---------------------------------------------------------------------------


def write_raw(
    warehouse: Warehouse,
    day: str,
    accounts: range,
    items: range,
    price: float,
    name: str = "Account",
) -> None:
    """Accounts and OrderItems numbered from 1: OrderItem n belongs to account n."""
    con = duckdb.connect()
    meta = (
        f"TIMESTAMP '{day} 10:00:00' AS _version_stamp, '{day}' AS _partition, "
        "now()::TIMESTAMP AS _extracted_at"
    )
    con.execute(
        f"""CREATE TABLE a AS SELECT '001' || lpad(i::VARCHAR, 12, '0') || 'AAA' AS "Id",
            false AS "IsDeleted", '{name} ' || i AS "Name",
            'billing' || i || '@example.com' AS "Billing_Email__c", {meta}
            FROM range({accounts.start}, {accounts.stop}) t(i)"""
    )
    con.execute(
        f"""CREATE TABLE i AS SELECT '802' || lpad(i::VARCHAR, 12, '0') || 'AAA' AS "Id",
            false AS "IsDeleted", true AS "Order.Sync_To_M3ter__c",
            'Data Transfer' AS "Product2.Name",
            'data_platform_standard' AS "Product2.M3ter_Plan_Template_Code__c",
            'transfer_gb' AS "Product2.M3ter_Aggregation_Code__c",
            DATE '2024-01-01' AS "ServiceDate", DATE '2024-12-31' AS "EndDate",
            {price}::DOUBLE AS "UnitPrice",
            '001' || lpad(i::VARCHAR, 12, '0') || 'AAA' AS "Order.AccountId",
            '801' || lpad(i::VARCHAR, 12, '0') || 'AAA' AS "OrderId", {meta}
            FROM range({items.start}, {items.stop}) t(i)"""
    )
    warehouse.write_partition(con, raw_table(SourceObject("Account")), day, "FROM a")
    warehouse.write_partition(con, raw_table(SourceObject("OrderItem")), day, "FROM i")
    con.close()


def compiled(root: Path) -> CompiledSet:
    directory = root / "mappings"
    directory.mkdir(exist_ok=True)
    for entity, text in MAPPINGS.items():
        (directory / f"{entity}.yaml").write_text(text)
    return compile_mappings(load_mappings(directory), describe)


# --- runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    reads: int
    writes: int
    seconds: float
    outcomes: dict[str, dict[str, int]]


def load_day(
    client: M3terClient, warehouse: Warehouse, mappings: CompiledSet, day: str, whole: bool
) -> Measured:
    for entity in ENTITIES:
        stage(warehouse, mappings[entity], [day])
    current = Current(client, whole=whole)
    before = client.spent()
    started = time.perf_counter()
    outcomes = {
        entity: load(client, warehouse, entity, [day], current=current).outcomes
        for entity in ENTITIES
    }
    seconds = time.perf_counter() - started
    spent = client.spent() - before
    return Measured(spent.reads, spent.writes, seconds, outcomes)


def side(root: Path, state: Path, changes: int, whole: bool) -> tuple[Measured, Measured]:
    """Set-up, then the run of `changes` changes and the run of one, on fresh copies."""
    sandbox_dir = root / "sandbox"
    (sandbox_dir / "m3ter").mkdir(parents=True)
    shutil.copy(state, sandbox_dir / "m3ter" / "state.jsonl")
    warehouse = Warehouse(root / "warehouse")
    mappings = compiled(root)
    half = changes // 2
    write_raw(warehouse, DAYS[0], range(1, changes + 1), range(1, changes + 1), 0.05)
    write_raw(warehouse, DAYS[1], range(1, half + 1), range(half + 1, changes + 1), 0.06, "Renamed")
    write_raw(warehouse, DAYS[2], range(0), range(changes, changes + 1), 0.07)
    with sandbox_process(
        sandbox_dir, "--only", "m3ter", "--m3ter-rate-limit", "0", timeout=600
    ) as (_, info):
        settings = dataclasses.replace(
            sandbox_settings(info["m3ter"]), rate_limit=0.0, ip_limit=0, concurrency=4
        )
        with M3terClient(settings) as client:
            load_day(client, warehouse, mappings, DAYS[0], whole=False)
            many = load_day(client, warehouse, mappings, DAYS[1], whole)
            one = load_day(client, warehouse, mappings, DAYS[2], whole)
    return many, one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="accounts and account plans")
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--root", type=Path, default=None, help="default: a temporary directory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[tuple[int, str], tuple[Measured, Measured]] = {}
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        root = Path(tmp)
        for size in sizes:
            state = root / f"state-{size}.jsonl"
            started = time.perf_counter()
            seed_state(state, size)
            print(
                f"m3ter state with {size:,} accounts and {size:,} account plans written in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            for name, whole in (("pipeline", False), ("baseline", True)):
                many, one = side(root / f"{name}-{size}", state, args.changes, whole)
                results[(size, name)] = (many, one)
                for label, run in ((f"{args.changes} changes", many), ("1 change", one)):
                    print(
                        f"  {name:<8} {size:>7,} held, {label:<11}: {run.reads:>5,} reads, "
                        f"{run.writes:>4,} writes, {run.seconds:7.2f} s  {run.outcomes}",
                        flush=True,
                    )
    report(results, sizes, args.changes)


def report(
    results: dict[tuple[int, str], tuple[Measured, Measured]], sizes: list[int], changes: int
) -> None:
    print(f"\nsummary ({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")
    header = (
        f"{'m3ter holds':>11} {'run':<11} {'reads':>7} {'baseline':>9} {'ratio':>7} "
        f"{'writes':>7} {'baseline':>9} {'seconds':>8} {'baseline':>9}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        for index, label in enumerate((f"{changes} changes", "1 change")):
            ours, base = results[(size, "pipeline")][index], results[(size, "baseline")][index]
            ratio = base.reads / ours.reads if ours.reads else float("inf")
            print(
                f"{size:>11,} {label:<11} {ours.reads:>7,} {base.reads:>9,} {ratio:>6.1f}x "
                f"{ours.writes:>7,} {base.writes:>9,} {ours.seconds:>8.2f} {base.seconds:>9.2f}"
            )
    verdicts = []
    for index, (label, limit) in enumerate(((f"{changes} changes", MANY_READS), ("1", ONE_READS))):
        reads = [results[(size, "pipeline")][index].reads for size in sizes]
        verdicts.append(
            (f"reads for {label}: spread across sizes", f"<= {SIZE_SLACK}", max(reads) - min(reads))
        )
        verdicts.append((f"reads for {label}: most", f"<= {limit}", max(reads)))
        same = all(
            results[(size, "pipeline")][index].writes == results[(size, "baseline")][index].writes
            for size in sizes
        )
        verdicts.append(
            (f"writes for {label}: same as the baseline", "yes", "yes" if same else "no")
        )
    print()
    for figure, target, measured in verdicts:
        met = (
            measured == "yes" if isinstance(measured, str) else measured <= int(target.split()[-1])
        )
        print(f"{figure:<42} {target:>6} {measured!s:>6}  {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()

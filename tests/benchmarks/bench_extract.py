"""Extract 1,000,000 OrderItems over a partition range into `raw`, beside the naive baseline.

Run: `uv run python -m tests.benchmarks.bench_extract`

For 100,000 and 1,000,000 OrderItems (two sandbox orgs, each in its own process), the pipeline's
extract (Bulk API 2.0 queryAll, CSV pages on disk, typed in DuckDB, Parquet partitions) runs over
three years of daily partitions; then, for 1,000,000, the naive baseline: simple-salesforce REST
`query_all` (JSON records as dicts) -> pandas `json_normalize` -> a DuckDB table. Each phase
resets this process's peak RSS first and reports its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import ExtractSettings, extract
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.settings import sandbox_settings
from pipeline.warehouse import Warehouse
from tests.benchmarks.bench_bulk2_download import peak_rss_mb, reset_peak_rss
from tests.processes import sandbox_process

FIELDS = (
    "OrderId",
    "Product2Id",
    "Quantity",
    "UnitPrice",
    "ServiceDate",
    "EndDate",
    "Order.Account.Region__c",
    "Order.Account.Tier__c",
    "Product2.ProductCode",
)
SOURCE = SourceObject("OrderItem", FIELDS)
DAYS = 3 * 366 + 7


def client(info: dict[str, str]) -> SalesforceClient:
    return SalesforceClient(sandbox_settings(info))


def partitions() -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=d)).isoformat() for d in range(DAYS, 0, -1)]


def measure(name: str, run: Callable[[], int]) -> dict[str, float]:
    reset_peak_rss()
    started = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(
        f"{name:<34} {rows:>9,} rows {seconds:7.2f} s {rows / seconds:>9,.0f} rows/s  "
        f"peak RSS {peak:6.0f} MB",
        flush=True,
    )
    return {"rows": rows, "seconds": seconds, "peak_mb": peak}


def pipeline_run(info: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as root:
        result = extract(
            client(info),
            Warehouse(Path(root)),
            SOURCE,
            partitions(),
            ExtractSettings(rest_threshold=0),
        )
        return result.rows


def baseline_run(info: dict[str, str]) -> int:
    sf = client(info).salesforce
    soql = f"SELECT Id, SystemModstamp, IsDeleted, {', '.join(FIELDS)} FROM OrderItem"
    records = sf.query_all(soql, include_deleted=True)["records"]
    frame = pd.json_normalize(records).drop(
        columns=lambda c: c == "attributes" or c.endswith(".attributes"), errors="ignore"
    )
    frame = frame[
        [
            c
            for c in frame.columns
            if not c.endswith("attributes.type") and not c.endswith("attributes.url")
        ]
    ]
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute("CREATE TABLE raw_order_item AS SELECT * FROM frame")
    return int(con.execute("SELECT count(*) FROM raw_order_item").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-root", type=Path, default=Path(".m3sync"))
    args = parser.parse_args()
    results = {}
    for accounts in (5_000, 50_000):
        state = (args.state_root / f"bench-extract-{accounts}").resolve()
        with sandbox_process(
            state,
            "--only",
            "salesforce",
            "--accounts",
            str(accounts),
            "--daily-api-requests",
            "10000000",
        ) as (_, info):
            sf = info["salesforce"]
            results[accounts] = measure(
                f"pipeline extract, {accounts * 20:,} items", lambda sf=sf: pipeline_run(sf)
            )
            if accounts == 50_000:
                results["baseline"] = measure(
                    "baseline REST -> pandas -> DuckDB", lambda sf=sf: baseline_run(sf)
                )
    small, large, base = results[5_000], results[50_000], results["baseline"]
    speed = (base["seconds"] / base["rows"]) / (large["seconds"] / large["rows"])
    print(f"speed: {speed:.1f}x the baseline's rows/s (target >= 10x)")
    print(
        f"peak RSS: {large['peak_mb']:.0f} MB vs baseline {base['peak_mb']:.0f} MB = "
        f"{large['peak_mb'] / base['peak_mb']:.2f} (target <= 0.25)"
    )
    print(
        f"RSS flatness: {small['peak_mb']:.0f} MB at 100k vs {large['peak_mb']:.0f} MB at 1M = "
        f"{large['peak_mb'] / small['peak_mb'] - 1:+.0%} (target within 20%)"
    )


if __name__ == "__main__":
    main()

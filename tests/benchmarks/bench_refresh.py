"""Refresh 1,000,000 OrderItems with 1% of their values changed unstamped, beside a full re-extract.

Run: `uv run python -m tests.benchmarks.bench_refresh [--accounts 50000]`

The org sandbox runs in its own process. Every OrderItem is first extracted over three years of
daily partitions (setup). The sandbox is then stopped, 1% of the OrderItems get a new
`UnitPrice` with no stamp moving (what a formula field's recalculation looks like to the API),
and it starts again on the same records. Timed one after another in this process, each with its
peak RSS reset first: the refresh of OrderItem (one Bulk API 2.0 query of every live record,
compared with the warehouse, the differences written to `_refresh`), and the baseline, the full
re-extract of every partition, which is what catching those changes costs without a refresh.
Target: the refresh no slower than the re-extract, and its peak RSS no higher.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from pipeline.extract.refresh import refresh_object
from pipeline.extract.run import ExtractSettings, extract
from pipeline.warehouse import Warehouse
from tests.benchmarks.bench_bulk2_download import peak_rss_mb, reset_peak_rss
from tests.benchmarks.bench_extract import SOURCE, client, partitions
from tests.processes import sandbox_process

SETTINGS = ExtractSettings(rest_threshold=0)


def measure(name: str, run: Callable[[], tuple[int, int, int]]) -> dict[str, float]:
    reset_peak_rss()
    started = time.perf_counter()
    rows, found, calls = run()
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(
        f"{name:<28} {rows:>9,} rows read {found:>7,} found {seconds:7.2f} s "
        f"{calls:>4} API calls  peak RSS {peak:6.0f} MB",
        flush=True,
    )
    return {"seconds": seconds, "calls": calls, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=50_000)
    args = parser.parse_args()
    org = ("--only", "salesforce", "--accounts", str(args.accounts))
    with tempfile.TemporaryDirectory() as root:
        state = Path(root) / "sandbox"
        warehouse = Warehouse(Path(root) / "warehouse")
        with sandbox_process(state, *org, timeout=900) as (_, info):
            extracted = extract(
                client(info["salesforce"]), warehouse, SOURCE, partitions(), SETTINGS
            )
        print(f"setup: {extracted.rows:,} OrderItems extracted", flush=True)
        with duckdb.connect(str(state / "salesforce" / "records.duckdb")) as con:
            con.execute(
                'UPDATE org."OrderItem" SET "UnitPrice" = "UnitPrice" * 1.1 '
                'WHERE NOT "IsDeleted" AND hash("Id") % 100 = 0'
            )
        with sandbox_process(state, *org, timeout=900) as (_, info):
            sf = info["salesforce"]

            def refreshed() -> tuple[int, int, int]:
                found = refresh_object(client(sf), warehouse, SOURCE, SETTINGS)
                return found.live, found.changed + found.gone, found.api_calls

            def re_extracted() -> tuple[int, int, int]:
                again = Warehouse(Path(root) / "again")
                result = extract(client(sf), again, SOURCE, partitions(), SETTINGS)
                return result.rows, 0, result.api_calls

            refresh = measure("refresh (one bulk query)", refreshed)
            baseline = measure("full re-extract (baseline)", re_extracted)
    print(
        f"refresh / re-extract: {refresh['seconds'] / baseline['seconds']:.2f}x wall time, "
        f"{refresh['calls']:.0f} vs {baseline['calls']:.0f} API calls, "
        f"{refresh['peak_mb'] / baseline['peak_mb']:.2f}x peak RSS"
    )


if __name__ == "__main__":
    main()

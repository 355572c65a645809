"""Bulk API 2.0 download of 1,000,000 OrderItems from the org sandbox, through simple-salesforce.

Run: `uv run python -m tests.benchmarks.bench_bulk2_download [--accounts 50000]`

The sandbox runs in its own process (so server and client memory are measured apart). Three
client paths are timed one after another in this process, each with its peak RSS reset first:
`bulk2.download` (pages streamed to files), `bulk2.query_all` (pages as strings, written to files),
and the naive baseline, REST `query_all` (JSON records as dicts) over a subset of the rows.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from simple_salesforce import Salesforce

from pipeline.salesforce.session import salesforce_session
from tests.processes import sandbox_process

SELECT = (
    "SELECT Id, OrderId, Order.Account.Region__c, Order.Account.Tier__c, "
    "Product2.ProductCode, Quantity, UnitPrice, ServiceDate, SystemModstamp FROM OrderItem"
)


def peak_rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def reset_peak_rss(pid: int | str = "self") -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(name: str, server_pid: int, run: Callable[[], int]) -> dict[str, float]:
    reset_peak_rss()
    reset_peak_rss(server_pid)
    started = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - started
    result = {
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "client_peak_rss_mb": peak_rss_mb(),
        "server_peak_rss_mb": peak_rss_mb(server_pid),
    }
    print(
        f"{name:<22} {rows:>9,} rows {seconds:7.2f} s {rows / seconds:>10,.0f} rows/s  "
        f"client peak {result['client_peak_rss_mb']:6.0f} MB  "
        f"server peak {result['server_peak_rss_mb']:6.0f} MB"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000, help="20 OrderItems each")
    parser.add_argument("--baseline-rows", type=int, default=200_000)
    parser.add_argument("--state-dir", type=Path, default=Path(".m3sync/bench-sandbox"))
    args = parser.parse_args()

    started = time.monotonic()
    with sandbox_process(
        args.state_dir.resolve(),
        "--only",
        "salesforce",
        "--accounts",
        str(args.accounts),
        "--daily-api-requests",
        "10000000",
    ) as (process, sandbox):
        info = sandbox["salesforce"]
        print(
            f"sandbox ready in {time.monotonic() - started:.1f} s (org generated or reused "
            f"from {args.state_dir})"
        )
        sf = Salesforce(
            username=info["username"],
            password=info["password"],
            security_token=info["security_token"],
            session=salesforce_session(info["ca_file"], login_url=info["url"]),
        )

        def download() -> int:
            with tempfile.TemporaryDirectory() as out:
                pages = sf.bulk2.OrderItem.download(SELECT, path=out, wait=0)
                return sum(p["number_of_records"] for p in pages)

        def query_all_pages() -> int:
            rows = 0
            with tempfile.TemporaryDirectory() as out:
                for n, page in enumerate(sf.bulk2.OrderItem.query_all(SELECT, wait=0)):
                    Path(out, f"{n}.csv").write_text(page)
                    rows += page.count("\n") - 1
            return rows

        def rest_baseline() -> int:
            return len(sf.query_all(f"{SELECT} LIMIT {args.baseline_rows}")["records"])

        bulk = measure("bulk2.download", process.pid, download)
        measure("bulk2.query_all pages", process.pid, query_all_pages)
        rest = measure("REST query_all (naive)", process.pid, rest_baseline)
        print(
            f"bulk2.download vs REST baseline: {bulk['rows_per_s'] / rest['rows_per_s']:.1f}x "
            f"rows/s; target >= 100,000 rows/s: "
            f"{'met' if bulk['rows_per_s'] >= 100_000 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()

"""Write-back of 100,000 sync statuses to the org sandbox: Bulk API 2.0 beside one REST PATCH each.

Run: `uv run python -m tests.benchmarks.bench_writeback [--records 100000] [--baseline 1000]`

The sandbox (5,500 accounts: over 100,000 live OrderItems) runs in its own process. The
write-back's own path (`pipeline.writeback.run.send_pending`, through the pipeline's Salesforce
client) writes `--records` OrderItems' status, time, message and m3ter id; the baseline sends
one `PATCH sobjects/OrderItem/{Id}` per record through simple-salesforce for `--baseline` of
them (its cost is linear in the records, so its rate over a sample is its rate). Printed:
records/s and API calls per 1,000 records for both, and their ratios (target: 50x fewer calls,
10x the throughput).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb
from simple_salesforce import Salesforce

from pipeline.mapping.writeback import StatusFields
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.session import salesforce_session
from pipeline.salesforce.settings import sandbox_settings
from pipeline.writeback.run import WritebackSettings, send_pending
from tests.processes import sandbox_process

ROW = StatusFields(
    "OrderItem",
    "M3ter_Sync_Status__c",
    time="M3ter_Last_Synced__c",
    message="M3ter_Sync_Message__c",
    m3ter_id="M3ter_Id__c",
)


def _pending(con: duckdb.DuckDBPyConnection, ids: list[str], status: str) -> None:
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _pending AS
           SELECT row_number() OVER () - 1 AS pos, id AS source_id, id AS "key",
               ? AS status, 'account 001000000000001AAA: emailAddress is required' AS message,
               'b1f0c8a2-6d3e-4a55-9a51-' || lpad(CAST(row_number() OVER () AS VARCHAR), 12, '0')
                   AS m3ter_id,
               now()::TIMESTAMP AS synced_at
           FROM (SELECT unnest(?::VARCHAR[]) AS id)""",
        [status, ids],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--state-dir", type=Path, default=Path(".m3sync/bench-writeback"))
    args = parser.parse_args()
    accounts = max(args.records * 11 // 200, 1)  # 20 OrderItems each, a few deleted: room for all
    with sandbox_process(
        args.state_dir.resolve(),
        "--only",
        "salesforce",
        "--accounts",
        str(accounts),
        "--daily-api-requests",
        "10000000",
    ) as (_process, sandbox):
        info = sandbox["salesforce"]
        client = SalesforceClient(sandbox_settings(info))
        ids_file = Path(tempfile.mkdtemp()) / "ids.json"
        client.query_all_to_file("SELECT Id FROM OrderItem", ids_file, include_deleted=False)
        con = duckdb.connect()
        ids = [r[0] for r in con.execute(f"SELECT Id FROM read_json('{ids_file}')").fetchall()]
        ids = ids[: args.records]

        _pending(con, ids, "Success")
        before = client.api_calls
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            send_pending(client, con, ROW, "bulk", Path(work), WritebackSettings(poll_seconds=0.2))
        bulk_s = time.perf_counter() - started
        bulk_calls = client.api_calls - before
        (written,) = con.execute("SELECT count(*) FROM _results WHERE ok").fetchone() or (0,)
        print(
            f"bulk write-back   {written:>9,} records {bulk_s:8.2f} s "
            f"{written / bulk_s:>10,.0f} records/s {bulk_calls:>7,} API calls "
            f"({1000 * bulk_calls / max(written, 1):.2f} per 1,000)"
        )

        sf = Salesforce(
            instance_url=info["url"],
            session_id=client.salesforce.session_id,
            session=salesforce_session(info["ca_file"], login_url=info["url"]),
            version=client.settings.api_version,
        )
        sample = ids[: args.baseline]
        started = time.perf_counter()
        for record in sample:
            sf.OrderItem.update(
                record,
                {
                    "M3ter_Sync_Status__c": "Failed",
                    "M3ter_Last_Synced__c": "2026-12-04T00:00:00.000Z",
                    "M3ter_Sync_Message__c": "account 001000000000001AAA: emailAddress is required",
                    "M3ter_Id__c": "b1f0c8a2-6d3e-4a55-9a51-000000000001",
                },
            )
        rest_s = time.perf_counter() - started
        print(
            f"REST PATCH each   {len(sample):>9,} records {rest_s:8.2f} s "
            f"{len(sample) / rest_s:>10,.0f} records/s {len(sample):>7,} API calls "
            f"(1000.00 per 1,000)"
        )
        throughput = (written / bulk_s) / (len(sample) / rest_s)
        calls = 1000 / (1000 * bulk_calls / max(written, 1))
        print(
            f"bulk vs REST PATCH: {throughput:.1f}x the records/s (target 10x: "
            f"{'met' if throughput >= 10 else 'NOT met'}), {calls:,.0f}x fewer API calls "
            f"(target 50x: {'met' if calls >= 50 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()

"""The three-year demo backfill through a deployment's daemon on PostgreSQL, beside the same
`m3sync backfill` in one process on SQLite: what Dagster's storage costs a backfill on each.

Run (PostgreSQL installed, as the deploy suite's README command does):
`uv run python -m tests.benchmarks.bench_deploy [--accounts 200] [--history-days N]`

Each side gets a fresh demo sandbox (m3ter at its real limit, 50 requests/s) and warehouse, and
loads at 45 requests/s with 8 connections.
- SQLite: `m3sync backfill --from <first day> --sandbox sandbox.json` in a fresh DAGSTER_HOME,
  the run in the command's own process.
- PostgreSQL: the deployment of `deploy/` (a PostgreSQL server of its own, `dagster code-server
  start`, `dagster-daemon run`, `dagster-webserver`) already serving, then `m3sync --launch
  backfill --from <first day>`: the daemon's queue hands the run to the code server, whose run
  worker loads. The services' start is not counted: a deployment serves before and after.
Printed per side: wall time, m3ter's writes, runs and the events they stored, what storing a
materialization costs on that storage (one at a time and batched), and where the time went by
stage; then the ratio of the two walls.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import dagster as dg

from tests.benchmarks.runs import (
    LOADER_RATE,
    Timed,
    demo_sandbox,
    m3ter_writes,
    org_options,
    org_parser,
    print_breakdown,
    read_runs,
    run_command,
    yesterday,
)
from tests.deploy.deployment import deployment_over
from tests.deploy.postgres import postgres_server
from tests.processes import M3SYNC

SAMPLE = 1000  # materializations stored again to time the storage


def store_cost(home: Path) -> tuple[float, float]:
    """Milliseconds per event the instance's event storage takes to store `SAMPLE` of its runs'
    own materializations again under a run of their own: one at a time (each event of a step
    that is not batched) and in one batch (a range step's, with `DAGSTER_EVENT_BATCH_SIZE`).
    The copies are deleted afterwards."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs(limit=1)
        records = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=SAMPLE
        ).records
        storage = instance.event_log_storage
        costs = []
        for batched in (False, True):
            copy = str(uuid.uuid4())
            events = [r.event_log_entry._replace(run_id=copy) for r in records]
            started = time.perf_counter()
            if batched:
                storage.store_event_batch(events)
            else:
                for event in events:
                    storage.store_event(event)
            costs.append(1000 * (time.perf_counter() - started) / len(events))
            storage.delete_events(copy)
    return costs[0], costs[1]


def _report(name: str, timed: Timed, writes: int, home: Path) -> None:
    one, batch = store_cost(home)
    print(
        f"{name}: wall {timed.wall:.1f} s; {writes:,} m3ter writes (floor "
        f"{writes / LOADER_RATE:.1f} s); {timed.runs} run(s), {timed.events:,} events, "
        f"{timed.events / max(timed.runs, 1):,.0f} per run; storing a materialization: "
        f"{one:.2f} ms one at a time, {batch:.2f} ms in a batch of {SAMPLE:,}"
    )
    print_breakdown(name, timed)


def main() -> None:
    args = org_parser(__doc__.splitlines()[0], "bench-deploy").parse_args()
    org = org_options(args)
    loader = {"M3SYNC_M3TER_RATE_LIMIT": str(LOADER_RATE), "M3SYNC_M3TER_CONCURRENCY": "8"}

    with demo_sandbox(args.work / "sandbox-sqlite", *org) as sandbox:
        first = sandbox["salesforce"]["history_from"]
        arguments = ["backfill", "--from", first, "--to", yesterday(), "--sandbox"]
        arguments += [sandbox["file"], "--warehouse", str(args.work / "warehouse-sqlite")]
        sqlite = run_command(M3SYNC, arguments, args.work / "dagster-sqlite", {})
        _report(
            "SQLite, m3sync backfill", sqlite, m3ter_writes(sandbox), args.work / "dagster-sqlite"
        )

    with (
        postgres_server() as postgres,
        demo_sandbox(args.work / "sandbox-postgres", *org) as sandbox,
    ):
        base = {**os.environ, **loader, "M3SYNC_WAREHOUSE": str(args.work / "warehouse-pg")}
        for name in ("M3SYNC_MAPPINGS_DIR", "M3SYNC_MAPPINGS_SOURCE"):
            base.pop(name, None)
        with deployment_over(base, sandbox, postgres, args.work / "deployment") as deployed:
            first = sandbox["salesforce"]["history_from"]
            started = time.perf_counter()
            launched = deployed.m3sync(
                "--launch", "backfill", "--from", first, "--to", yesterday(), timeout=3600
            )
            wall = time.perf_counter() - started
            if launched.returncode:
                raise RuntimeError(f"the launched backfill failed:\n{launched.stdout}")
            os.environ.update(postgres.env)  # the instance's dagster.yaml reads them
            deployed_run = read_runs(deployed.home, wall, set())
            writes = m3ter_writes(sandbox)
            _report("PostgreSQL, m3sync --launch backfill", deployed_run, writes, deployed.home)

    print(
        f"PostgreSQL through the daemon vs SQLite in process: {deployed_run.wall:.1f} s vs "
        f"{sqlite.wall:.1f} s ({deployed_run.wall / sqlite.wall:.2f}x)"
    )


if __name__ == "__main__":
    main()

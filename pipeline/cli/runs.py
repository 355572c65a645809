"""Headless Dagster runs: `m3sync run`, `backfill`, `demo`, `reconcile`, and the UI beside them.

Every run goes through the code location's own jobs (`sync`, `full_reconcile`) in this process,
recorded in `DAGSTER_HOME` (default `.m3sync/dagster`), so `m3sync ui` shows the CLI's runs,
their logs and the partitions they filled next to the runs it launches itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
import typer
from rich.markdown import Markdown
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from assets.definitions import defs
from assets.jobs import FULL_RECONCILE, SYNC
from assets.load import AFTER
from assets.partitions import daily_partitions, partitions_per_run
from pipeline.cli.app import Options, WarehouseRoot, app, console, fail, warehouse_root
from pipeline.cli.sandbox import DEFAULT_STATE_DIR, Accounts, M3terPort, Port, Seed, StateDir, serve
from pipeline.sandbox.environment import sandbox_environment
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import RunningSandbox

PROJECT = Path(__file__).resolve().parents[2]
DEFAULT_HOME = Path(".m3sync/dagster")
# Telemetry off; one step at a time in the `m3ter_api` pool across every run of this instance,
# so overlapping runs share m3ter's rate limit instead of each spending it whole.
INSTANCE_CONFIG = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""
DEMO_M3TER_RATE = "45"  # the sandbox, like m3ter, allows 50 requests/s
DEMO_M3TER_CONCURRENCY = "8"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
STEP_DONE = {
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
}

SandboxFile = Annotated[
    Path | None,
    typer.Option(
        "--sandbox",
        help="Run against the sandbox this sandbox.json describes (it must be serving) instead "
        "of the org and m3ter configured by the M3SYNC_* variables.",
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Extract and stage, but only plan the load: no writes.")
]


def dagster_home() -> Path:
    """`DAGSTER_HOME`, made and configured on first use (an operator's own dagster.yaml stays)."""
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_CONFIG)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def configure(sandbox: Path | None, warehouse: Path | None) -> None:
    """Point this process's runs at a sandbox and a warehouse, through the environment."""
    if sandbox is not None:
        try:
            info = json.loads(sandbox.read_text())
        except (OSError, ValueError) as exc:
            fail(f"cannot read the sandbox description {sandbox}: {exc}")
        os.environ.update(sandbox_environment(info))
    os.environ["M3SYNC_WAREHOUSE"] = str(warehouse_root(warehouse).resolve())


@dataclass
class Ran:
    """What the runs of one command did: each asset's metadata (summed over runs)."""

    run_ids: list[str] = field(default_factory=list)
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, result: dg.ExecuteInProcessResult) -> None:
        self.run_ids.append(result.run_id)
        seen: set[str] = set()
        for event in result.get_asset_materialization_events():
            name = event.asset_key.to_user_string()
            if name in seen:  # a range run reports each asset once per partition
                continue
            seen.add(name)
            meta = {k: v.value for k, v in event.materialization.metadata.items()}
            self.assets[name] = _summed(self.assets.get(name), meta)
        for event in result.all_node_events:
            if event.event_type == dg.DagsterEventType.STEP_OUTPUT:
                data = event.step_output_data
                self.outputs[event.node_name] = {k: v.value for k, v in data.metadata.items()}


def _summed(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    if before is None:
        return after
    summed = dict(after)
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            summed[key] = (old or 0) + value
        elif isinstance(value, dict) and isinstance(old, dict):
            summed[key] = {k: old.get(k, 0) + value.get(k, 0) for k in {*old, *value}}
    return summed


def _failure(result: dg.ExecuteInProcessResult) -> str:
    failures = result.get_step_failure_events()
    if not failures:
        return "the run failed; see its logs in the UI"
    event = failures[0]
    error = event.step_failure_data.error
    if Options.verbose and error is not None:
        return f"{event.step_key} failed:\n{error.to_string()}"
    while error is not None and error.cause is not None:
        error = error.cause
    message = error.message.strip().splitlines()[-1] if error and error.message else "failed"
    return f"{event.step_key} failed: {message}"


@contextmanager
def _progress(instance: dg.DagsterInstance, run_id: str, label: str, steps: int) -> Iterator[None]:
    """A bar of finished steps, fed by the run's event log, with its latest message."""
    stop = threading.Event()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[label]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=steps, label=label)

        def follow() -> None:
            cursor = None
            while True:
                finished = stop.wait(0.5)
                page = instance.get_records_for_run(run_id, cursor=cursor)
                cursor = page.cursor
                for record in page.records:
                    entry = record.event_log_entry
                    event = entry.dagster_event
                    if event is None:
                        if entry.step_key and entry.user_message:
                            text = entry.user_message.splitlines()[0][:80]
                            bar.update(task, description=f"{entry.step_key}: {text}")
                    elif event.event_type in STEP_DONE:
                        bar.advance(task)
                    elif event.event_type == dg.DagsterEventType.STEP_START:
                        bar.update(task, description=str(event.step_key))
                if finished and not page.has_more:
                    return

        follower = threading.Thread(target=follow, name="run-progress", daemon=True)
        follower.start()
        try:
            yield
        finally:
            stop.set()
            follower.join(timeout=10)


@functools.cache
def _definitions() -> dg.Definitions:
    """The code location, built once per command (after `configure` set the environment)."""
    return defs()


def launch(
    job_name: str,
    label: str,
    *,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """One run of a code-location job, in this process, recorded in DAGSTER_HOME."""
    dagster_home()
    instance = dg.DagsterInstance.get()
    job = _definitions().resolve_job_def(job_name)
    run_id = str(uuid.uuid4())
    level = "INFO" if Options.verbose else "WARNING"
    config = {"loggers": {"console": {"config": {"log_level": level}}}, **(run_config or {})}
    with _progress(instance, run_id, label, len(job.graph.node_dict)):
        return job.execute_in_process(
            run_config=config,
            instance=instance,
            tags=dict(tags or {}),
            run_id=run_id,
            raise_on_error=False,
        )


def _dry_run_config(dry_run: bool) -> dict[str, Any]:
    if not dry_run:
        return {}
    return {"ops": {f"m3ter__{entity}": {"config": {"dry_run": True}} for entity in AFTER}}


def chunks(first: str, last: str) -> list[list[str]]:
    """The daily partitions from `first` to `last`, in runs the backfill policy allows."""
    keys = daily_partitions().get_partition_keys()
    for day in (first, last):
        if day not in keys:
            fail(f"{day} is not a daily partition: choose a day from {keys[0]} to {keys[-1]}")
    if first > last:
        fail(f"--from {first} is after --to {last}")
    wanted = keys[keys.index(first) : keys.index(last) + 1]
    size = partitions_per_run()
    return [wanted[i : i + size] for i in range(0, len(wanted), size)]


def sync(first: str, last: str, dry_run: bool) -> Ran:
    """The `sync` job over `first`..`last`, one run per chunk, then the summary; stops at the
    first failed run."""
    ran = Ran()
    parts = chunks(first, last)
    for number, keys in enumerate(parts, 1):
        span = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
        label = f"run {number}/{len(parts)} {span}" if len(parts) > 1 else span
        result = launch(
            SYNC,
            label,
            tags={RANGE_START: keys[0], RANGE_END: keys[-1]},
            run_config=_dry_run_config(dry_run),
        )
        ran.add(result)
        if not result.success:
            resume = f" Resume with --from {keys[0]}." if number > 1 else ""
            print_summary(ran)
            fail(f"run {result.run_id} ({span}) failed: {_failure(result)}{resume}")
    print_summary(ran)
    _where(ran)
    return ran


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    return table


def print_summary(ran: Ran) -> None:
    """Rows per stage, rejects, actions in m3ter and API calls spent."""
    extracted = _table("Extract", ("raw table", "rows", "deleted", "method", "API calls"))
    staged = _table("Stage", ("staged table", "rows", "tombstones", "rejects", "reject share"))
    loaded = _table(
        "Load into m3ter", ("m3ter entity", "outcomes", "rejected", "API calls", "writes")
    )
    for name, meta in sorted(ran.assets.items()):
        table_name = name.replace("/", ".")
        if name.startswith("raw/"):
            extracted.add_row(
                table_name,
                f"{meta['dagster/row_count']:,}",
                f"{meta['deleted_rows']:,}",
                str(meta["method"]),
                f"{meta['api_calls']:,}",
            )
        elif name.startswith("staged/"):
            rows = meta["dagster/row_count"]
            share = meta["rejects"] / (rows + meta["rejects"]) if rows + meta["rejects"] else 0.0
            staged.add_row(
                table_name,
                f"{rows:,}",
                f"{meta['tombstones']:,}",
                f"{meta['rejects']:,}",
                f"{share:.2%}",
            )
        elif name.startswith("m3ter/"):
            outcomes = meta["outcomes"]
            loaded.add_row(
                name.removeprefix("m3ter/"),
                ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())) or "none",
                f"{meta['rejects']:,}",
                f"{meta['api_calls']:,}",
                f"{meta['write_calls']:,}",
            )
    for table in (extracted, staged, loaded):
        if table.row_count:
            console.print(table)


def _where(ran: Ran) -> None:
    home = os.environ["DAGSTER_HOME"]
    root = warehouse_root()
    console.print(f"Runs: {', '.join(ran.run_ids)} (recorded in {home}).")
    console.print(
        f"Warehouse: {root / 'warehouse.duckdb'} "
        f"(query it with `m3sync inspect` or `duckdb -readonly {root / 'warehouse.duckdb'}`)."
    )


def _yesterday() -> str:
    return (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


@app.command("run")
def run_command(
    partition: Annotated[
        str | None,
        typer.Option("--partition", help="The daily partition (YYYY-MM-DD); default yesterday."),
    ] = None,
    sandbox: SandboxFile = None,
    warehouse: WarehouseRoot = None,
    dry_run: DryRun = False,
) -> None:
    """Extract, stage and load one daily partition (what the nightly schedule runs)."""
    configure(sandbox, warehouse)
    day = partition or _yesterday()
    sync(day, day, dry_run)


@app.command("backfill")
def backfill_command(
    first: Annotated[str, typer.Option("--from", help="First daily partition (YYYY-MM-DD).")],
    last: Annotated[
        str | None, typer.Option("--to", help="Last daily partition; default yesterday.")
    ] = None,
    sandbox: SandboxFile = None,
    warehouse: WarehouseRoot = None,
    dry_run: DryRun = False,
) -> None:
    """Extract, stage and load a range of partitions, a few runs of up to a year each."""
    configure(sandbox, warehouse)
    sync(first, last or _yesterday(), dry_run)


@app.command("reconcile")
def reconcile_command(
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the differences; otherwise only report them.")
    ] = False,
    sandbox: SandboxFile = None,
    warehouse: WarehouseRoot = None,
) -> None:
    """Report drift between the staged state and m3ter; --apply repairs it."""
    configure(sandbox, warehouse)
    config = {"ops": {"reconcile_all": {"config": {"apply": apply}}}}
    result = launch(FULL_RECONCILE, "full reconcile", run_config=config)
    if not result.success:
        fail(f"run {result.run_id} failed: {_failure(result)}")
    ran = Ran()
    ran.add(result)
    output = ran.outputs["reconcile_all"]
    table = _table(
        "Full reconcile" + (" (applied)" if apply else " (nothing written)"),
        ("entity", "changed in m3ter", "deleted in m3ter", "pending"),
    )
    for entity, causes in output["by_entity"].items():
        table.add_row(
            entity,
            *(f"{causes.get(k, 0):,}" for k in ("changed_in_m3ter", "deleted_in_m3ter", "pending")),
        )
    console.print(table)
    console.print(Markdown(output["objects"]))
    _where(ran)


@app.command()
def demo(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    port: Port = 8443,
    m3ter_port: M3terPort = 8444,
    accounts: Accounts = 200,
    seed: Seed = 1,
    warehouse: WarehouseRoot = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep the sandbox serving afterwards.")
    ] = True,
) -> None:
    """Start the sandbox, sync every partition of the demo org into m3ter, print a summary."""
    root = state_dir.resolve()

    def then(sandbox: RunningSandbox) -> None:
        os.environ.update(sandbox_environment(sandbox.info()))
        os.environ["M3SYNC_M3TER_RATE_LIMIT"] = DEMO_M3TER_RATE
        os.environ["M3SYNC_M3TER_CONCURRENCY"] = DEMO_M3TER_CONCURRENCY
        configure(None, warehouse)
        keys = daily_partitions().get_partition_keys()
        sync(keys[0], keys[-1], dry_run=False)
        console.print(
            f"Dagster UI: `uv run m3sync ui --sandbox {state_dir / 'sandbox.json'}` "
            "(while the sandbox serves), then http://127.0.0.1:3000."
        )

    serve(
        "Demo",
        state_dir,
        SalesforceConfig(state_dir=root / "salesforce", accounts=accounts, seed=seed),
        M3terConfig(state_dir=root / "m3ter"),
        port,
        m3ter_port,
        then=then,
        keep_serving=serve_after,
    )


@app.command("ui")
def ui_command(
    sandbox: SandboxFile = None,
    warehouse: WarehouseRoot = None,
    port: Annotated[int, typer.Option("--port", help="The UI's port on 127.0.0.1.")] = 3000,
) -> None:
    """The Dagster UI and daemon (`dagster dev`) on the CLI's DAGSTER_HOME."""
    configure(sandbox, warehouse)
    dagster_home()
    dagster = str(Path(sys.executable).parent / "dagster")
    os.chdir(PROJECT)
    os.execv(  # noqa: S606  (the UI replaces this process; no shell, fixed arguments)
        dagster,
        [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
    )

"""Headless Dagster runs: `m3sync run`, `backfill`, `demo`, `reconcile`, and the UI beside them.

Every run goes through the code location's own jobs (`sync`, `full_reconcile`) in this process,
recorded in `DAGSTER_HOME` (default `.m3sync/dagster`), so `m3sync ui` shows the CLI's runs,
their logs and the partitions they filled next to the runs it launches itself. The commands
import the Dagster side (`pipeline/cli/execution.py`) only when they run: it takes seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipeline.cli.app import Options, WarehouseRoot, app, console, fail, warehouse_root
from pipeline.cli.home import dagster_home
from pipeline.cli.sandbox import (
    DEFAULT_STATE_DIR,
    M3terPort,
    OrgOption,
    Port,
    Seed,
    StateDir,
    serve,
)
from pipeline.mapping.source import ENVIRONMENT as MAPPINGS_ENVIRONMENT
from pipeline.mapping.source import SHIPPED_MAPPINGS
from pipeline.sandbox.environment import sandbox_environment
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig

if TYPE_CHECKING:
    from pipeline.sandbox.server import RunningSandbox

PROJECT = Path(__file__).resolve().parents[2]
DEMO_M3TER_RATE = "45"  # the sandbox, like m3ter, allows 50 requests/s
DEMO_M3TER_CONCURRENCY = "8"
# The quick demo shows the whole product in a couple of minutes; `--full` is the whole demo org,
# whose loads take minutes of m3ter's rate limit alone.
QUICK_ACCOUNTS, QUICK_HISTORY_DAYS = 50, 365
FULL_ACCOUNTS = 200  # over the sandbox's default history, three years

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
RunConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Dagster run configuration (YAML) for every run, e.g. "
        "`resources: {extract_settings: {config: {rest_threshold: 0}}}`.",
    ),
]


def configure(sandbox: Path | None, warehouse: Path | None) -> None:
    """Point this process's runs at a sandbox and a warehouse, through the environment."""
    if Options.launch and (sandbox is not None or warehouse is not None):
        fail(
            "--launch hands runs to the deployment, which runs them with its own environment: "
            "set the org, m3ter and warehouse there (M3SYNC_* on the code server), not with "
            "--sandbox or --warehouse"
        )
    if sandbox is not None:
        try:
            info = json.loads(sandbox.read_text())
        except (OSError, ValueError) as exc:
            fail(f"cannot read the sandbox description {sandbox}: {exc}")
        use_sandbox(info)
    os.environ["M3SYNC_WAREHOUSE"] = str(warehouse_root(warehouse).resolve())


# The mappings each kind of sandbox org syncs with, where they are not the shipped ones.
ORG_MAPPINGS: dict[str, Path] = {"cpq": SHIPPED_MAPPINGS / "examples" / "cpq"}


def use_sandbox(info: Mapping[str, Any]) -> None:
    """Connect this process's runs to the sandbox `info` describes; unless the operator chose
    them, partitions begin on the demo org's first day and a CPQ org syncs with the CPQ
    example mappings."""
    os.environ.update(sandbox_environment(info))
    salesforce = info.get("salesforce", {})
    if salesforce.get("history_from"):
        os.environ.setdefault("M3SYNC_START_DATE", salesforce["history_from"])
    if salesforce.get("org") in ORG_MAPPINGS:
        os.environ.setdefault(
            MAPPINGS_ENVIRONMENT["directory"], str(ORG_MAPPINGS[salesforce["org"]])
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
    config: RunConfigFile = None,
) -> None:
    """Extract, stage and load one daily partition (what the nightly schedule runs)."""
    day = partition or _yesterday()
    backfill_command(day, day, sandbox, warehouse, dry_run, config)


@app.command("backfill")
def backfill_command(
    first: Annotated[str, typer.Option("--from", help="First daily partition (YYYY-MM-DD).")],
    last: Annotated[
        str | None, typer.Option("--to", help="Last daily partition; default yesterday.")
    ] = None,
    sandbox: SandboxFile = None,
    warehouse: WarehouseRoot = None,
    dry_run: DryRun = False,
    config: RunConfigFile = None,
) -> None:
    """Extract, stage and load a range of partitions, a few runs of up to a year each."""
    configure(sandbox, warehouse)
    from pipeline.cli import execution

    execution.sync(first, last or _yesterday(), execution.run_config(dry_run, config))


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
    from pipeline.cli import execution

    execution.reconcile(apply)


@app.command("refresh")
def refresh_command(
    dry_run: DryRun = False,
    sandbox: SandboxFile = None,
    warehouse: WarehouseRoot = None,
) -> None:
    """Read every mapped record again and bill what daily windows cannot see: formula values
    that changed, records purged from the recycle bin (what the weekly schedule runs)."""
    configure(sandbox, warehouse)
    from pipeline.cli import execution

    execution.refresh(dry_run)


@app.command()
def demo(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    port: Port = 8443,
    m3ter_port: M3terPort = 8444,
    org_kind: OrgOption = "demo",
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help=f"The whole demo org: {FULL_ACCOUNTS} accounts over three years (about 6 minutes "
            f"on 2 cores) instead of {QUICK_ACCOUNTS} over one year.",
        ),
    ] = False,
    accounts: Annotated[
        int | None,
        typer.Option(
            "--accounts",
            min=1,
            help=f"Demo org size: 20 OrderItems per account (default {QUICK_ACCOUNTS}, "
            f"{FULL_ACCOUNTS} with --full).",
        ),
    ] = None,
    seed: Seed = 1,
    history_days: Annotated[
        int | None,
        typer.Option(
            "--history-days",
            min=2,
            help=f"Days of demo org history before today (default {QUICK_HISTORY_DAYS}, three "
            "years with --full).",
        ),
    ] = None,
    warehouse: WarehouseRoot = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep the sandbox serving afterwards.")
    ] = True,
) -> None:
    """Start the sandbox, sync every partition of the demo org into m3ter, print a summary."""
    root = state_dir.resolve()

    def then(sandbox: RunningSandbox) -> None:
        use_sandbox(sandbox.info())
        os.environ["M3SYNC_M3TER_RATE_LIMIT"] = DEMO_M3TER_RATE
        os.environ["M3SYNC_M3TER_CONCURRENCY"] = DEMO_M3TER_CONCURRENCY
        configure(None, warehouse)
        from pipeline.cli import execution

        execution.sync_all()
        console.print(
            f"Dagster UI: `uv run m3sync ui --sandbox {state_dir / 'sandbox.json'}` "
            "(while the sandbox serves), then http://127.0.0.1:3000."
        )

    serve(
        "Demo",
        state_dir,
        SalesforceConfig(
            state_dir=root / "salesforce",
            org=org_kind,
            accounts=accounts or (FULL_ACCOUNTS if full else QUICK_ACCOUNTS),
            seed=seed,
            history_days=history_days or (None if full else QUICK_HISTORY_DAYS),
        ),
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

"""The `m3sync` command."""

from __future__ import annotations

import enum
import json
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Annotated, NoReturn

import dagster as dg
import typer
from rich.console import Console
from rich.table import Table

from assets.definitions import daily_partitions
from assets.extract import extract_asset
from assets.load import load_asset
from assets.resources import (
    ExtractResource,
    M3terResource,
    MappingsResource,
    SalesforceResource,
    StageResource,
    WarehouseResource,
)
from assets.staging import staged_asset
from pipeline.extract.objects import ALL
from pipeline.load.entities import ORDER
from pipeline.load.reconcile import Current
from pipeline.load.run import load
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.errors import M3terError
from pipeline.m3ter.settings import sandbox_settings as m3ter_sandbox_settings
from pipeline.m3ter.settings import settings_from_env as m3ter_settings_from_env
from pipeline.mapping.errors import MappingError
from pipeline.mapping.files import dump_mappings, load_mappings
from pipeline.mapping.metadata import read_org_mappings
from pipeline.mapping.spec import ENTITIES
from pipeline.mapping.validate import reference_problems
from pipeline.salesforce.client import SalesforceClient
from pipeline.salesforce.errors import SalesforceExtractError
from pipeline.salesforce.settings import sandbox_settings, settings_from_env
from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import RunningSandbox, running_sandbox, wait_for_shutdown
from pipeline.warehouse import Warehouse

app = typer.Typer(
    help="Sync Salesforce deals into m3ter billing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sandbox_app = typer.Typer(
    help="The embedded default: a Salesforce org and an m3ter API over HTTPS on 127.0.0.1.",
    no_args_is_help=True,
)
app.add_typer(sandbox_app, name="sandbox")
mappings_app = typer.Typer(
    help="Mapping sets: YAML files under mappings/ or the org's *Mapping__mdt records.",
    no_args_is_help=True,
)
app.add_typer(mappings_app, name="mappings")
console = Console()

DEFAULT_STATE_DIR = Path(".m3sync/sandbox")


class Server(enum.StrEnum):
    salesforce = "salesforce"
    m3ter = "m3ter"


StateDir = Annotated[
    Path,
    typer.Option("--state-dir", help="Where the sandbox keeps its state, CA and sandbox.json."),
]
Port = Annotated[
    int, typer.Option("--port", help="Salesforce org port on 127.0.0.1 (0: any free).")
]
M3terPort = Annotated[
    int, typer.Option("--m3ter-port", help="m3ter API port on 127.0.0.1 (0: any free).")
]
Only = Annotated[Server | None, typer.Option("--only", help="Start only this server.")]
Accounts = Annotated[
    int, typer.Option("--accounts", min=1, help="Demo org size: 20 OrderItems per account.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the demo org generator.")]
Faults = Annotated[
    str,
    typer.Option(
        "--faults",
        help="Salesforce fault rates, e.g. 'http500=0.05,http503=0.05,drop=0.02,slow=0.02,"
        "expire=0.02,bulk_fail=0.1'.",
    ),
]
M3terFaults = Annotated[
    str,
    typer.Option(
        "--m3ter-faults",
        help="m3ter fault rates, e.g. 'http500=0.05,http502=0.02,http503=0.02,http504=0.02,"
        "drop=0.02,slow=0.02,expire=0.02'.",
    ),
]
FaultSeed = Annotated[int, typer.Option("--fault-seed", help="Seed of the fault sequences.")]
SessionTtl = Annotated[
    float, typer.Option("--session-ttl", help="Salesforce session lifetime in seconds.")
]
ApiQuota = Annotated[
    int, typer.Option("--daily-api-requests", help="The org's daily API request allowance.")
]
RateLimit = Annotated[
    float,
    typer.Option("--m3ter-rate-limit", min=0, help="m3ter requests/s per org (0: no limit)."),
]
TokenTtl = Annotated[
    float, typer.Option("--m3ter-token-ttl", help="m3ter access token lifetime in seconds.")
]


def _faults(text: str, seed: int, option: str) -> FaultConfig:
    try:
        return FaultConfig.parse(text, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def _summary(title: str, sandbox: RunningSandbox) -> Table:
    table = Table(title=title)
    table.add_column("server")
    table.add_column("object")
    table.add_column("records", justify="right")
    if sandbox.salesforce is not None:
        for name, count in sandbox.salesforce.org.counts.items():
            table.add_row("salesforce", name, f"{count:,}")
    if sandbox.m3ter is not None:
        for name, count in sandbox.m3ter.store.counts().items():
            if count:
                table.add_row("m3ter", name, f"{count:,}")
    return table


def _serve(
    title: str,
    state_dir: Path,
    salesforce: SalesforceConfig | None,
    m3ter: M3terConfig | None,
    salesforce_port: int,
    m3ter_port: int,
    then: Callable[[RunningSandbox], None] | None = None,
    serve: bool = True,
) -> None:
    with ExitStack() as stack:
        with console.status("Starting the sandbox..."):
            sandbox = stack.enter_context(
                running_sandbox(
                    state_dir,
                    salesforce=salesforce,
                    m3ter=m3ter,
                    salesforce_port=salesforce_port,
                    m3ter_port=m3ter_port,
                )
            )
        console.print(_summary(title, sandbox))
        console.out(json.dumps(sandbox.info(), indent=2), highlight=False)
        console.print(f"Written to {state_dir / 'sandbox.json'}.")
        if then is not None:
            then(sandbox)
        if serve:
            console.print("Serving; press Ctrl+C to stop.")
            wait_for_shutdown()


@sandbox_app.command("up")
def sandbox_up(
    port: Port = 8443,
    m3ter_port: M3terPort = 8444,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    only: Only = None,
    accounts: Accounts = 200,
    seed: Seed = 1,
    faults: Faults = "",
    m3ter_faults: M3terFaults = "",
    fault_seed: FaultSeed = 0,
    session_ttl: SessionTtl = 7200.0,
    daily_api_requests: ApiQuota = 100_000,
    m3ter_rate_limit: RateLimit = 50.0,
    m3ter_token_ttl: TokenTtl = 5 * 3600.0,
) -> None:
    """Start the sandbox servers on 127.0.0.1 and serve until stopped."""
    root = state_dir.resolve()
    salesforce = None
    m3ter = None
    if only in (None, Server.salesforce):
        salesforce = SalesforceConfig(
            state_dir=root / "salesforce",
            accounts=accounts,
            seed=seed,
            session_ttl_seconds=session_ttl,
            daily_api_requests=daily_api_requests,
            faults=_faults(faults, fault_seed, "--faults"),
        )
    if only in (None, Server.m3ter):
        m3ter = M3terConfig(
            state_dir=root / "m3ter",
            token_ttl_seconds=m3ter_token_ttl,
            rate_limit_per_second=m3ter_rate_limit or None,
            faults=_faults(m3ter_faults, fault_seed, "--m3ter-faults"),
        )
    _serve("Sandbox", state_dir, salesforce, m3ter, port, m3ter_port)


@app.command()
def demo(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    port: Port = 8443,
    m3ter_port: M3terPort = 8444,
    accounts: Accounts = 200,
    seed: Seed = 1,
    warehouse: Annotated[
        Path, typer.Option("--warehouse", help="The warehouse root the run writes to.")
    ] = Path(".m3sync"),
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Keep the sandbox serving afterwards.")
    ] = True,
) -> None:
    """Start the sandbox, extract and stage the demo org into the warehouse, then serve."""
    root = state_dir.resolve()
    salesforce = SalesforceConfig(state_dir=root / "salesforce", accounts=accounts, seed=seed)
    m3ter = M3terConfig(state_dir=root / "m3ter")
    _serve(
        "Demo",
        state_dir,
        salesforce,
        m3ter,
        port,
        m3ter_port,
        then=lambda sandbox: _run_demo(sandbox, warehouse),
        serve=serve,
    )


DEMO_M3TER_RATE = 45.0


def _run_demo(sandbox: RunningSandbox, warehouse: Path) -> None:
    """Materialize every extract and staged asset over every daily partition up to yesterday."""
    partitions = daily_partitions()
    keys = partitions.get_partition_keys()
    resources = {
        "salesforce": SalesforceResource.from_settings(
            sandbox_settings(sandbox.info()["salesforce"])
        ),
        "warehouse": WarehouseResource(root=str(warehouse)),
        "extract_settings": ExtractResource(),
        "mappings": MappingsResource(),
        "stage_settings": StageResource(),
        # The sandbox allows 50 requests/s; the demo goes close to it.
        "m3ter": M3terResource.from_settings(
            replace(
                m3ter_sandbox_settings(sandbox.info()["m3ter"]),
                rate_limit=DEMO_M3TER_RATE,
                concurrency=8,
            )
        ),
    }
    extracted = Table(title=f"Extract, partitions {keys[0]} .. {keys[-1]}")
    for column in ("raw table", "rows", "deleted", "method", "API calls"):
        extracted.add_column(column, justify="left" if column == "raw table" else "right")
    staged = Table(title="Stage")
    for column in ("staged table", "rows", "tombstones", "rejects", "reject share"):
        staged.add_column(column, justify="left" if column == "staged table" else "right")
    loaded = Table(title="Load into m3ter")
    for column in ("m3ter entity", "actions", "rejected by m3ter", "API calls", "writes"):
        loaded.add_column(column, justify="left" if column == "m3ter entity" else "right")
    range_tags = {
        "dagster/asset_partition_range_start": keys[0],
        "dagster/asset_partition_range_end": keys[-1],
    }
    runs = (
        (
            [s for s in ALL if not s.partitioned],
            [e for e in ENTITIES if e == "compound_aggregations"],
            {},
        ),
        (
            [s for s in ALL if s.partitioned],
            [e for e in ENTITIES if e != "compound_aggregations"],
            range_tags,
        ),
    )
    for sources, entities, tags in runs:
        names = ", ".join(s.name for s in sources)
        with console.status(f"Extracting {names} and staging {', '.join(entities)}..."):
            result = dg.materialize(
                [
                    *(extract_asset(s, partitions) for s in sources),
                    *(staged_asset(e, partitions) for e in entities),
                    *(load_asset(e, partitions) for e in entities),
                ],
                resources=resources,
                tags=tags,
                raise_on_error=False,
                # the summary tables say what happened; Dagster's per-event log would bury it
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
        seen: set[str] = set()
        for event in result.get_asset_materialization_events():
            name = event.asset_key.to_user_string()
            if name in seen:  # a range run reports each asset once per partition
                continue
            seen.add(name)
            meta = event.materialization.metadata
            table_name = name.replace("/", ".")
            if name.startswith("m3ter/"):
                actions = meta["outcomes"].value
                assert isinstance(actions, dict)
                loaded.add_row(
                    name.removeprefix("m3ter/"),
                    ", ".join(f"{k} {v:,}" for k, v in actions.items()) or "none",
                    f"{meta['rejects'].value:,}",
                    f"{meta['api_calls'].value:,}",
                    f"{meta['write_calls'].value:,}",
                )
            elif name.startswith("raw/"):
                extracted.add_row(
                    table_name,
                    f"{meta['dagster/row_count'].value:,}",
                    f"{meta['deleted_rows'].value:,}",
                    str(meta["method"].value),
                    f"{meta['api_calls'].value:,}",
                )
            else:
                staged.add_row(
                    table_name,
                    f"{meta['dagster/row_count'].value:,}",
                    f"{meta['tombstones'].value:,}",
                    f"{meta['rejects'].value:,}",
                    f"{meta['reject_share'].value:.2%}",
                )
        if not result.success:
            error = result.get_step_failure_events()[0].step_failure_data.error
            while error is not None and error.cause is not None:
                error = error.cause
            _fail(f"the run failed: {error.message.strip() if error else 'see the run logs'}")
    console.print(extracted)
    console.print(staged)
    console.print(loaded)
    catalog = warehouse / "warehouse.duckdb"
    console.print(f"Warehouse: {catalog} (open it with `duckdb -readonly {catalog}`).")


Sandbox = Annotated[
    Path | None,
    typer.Option(
        "--sandbox",
        help="Connect to the org sandbox described by this sandbox.json instead of the org "
        "configured by the M3SYNC_SALESFORCE_* variables.",
    ),
]
MappingsDir = Annotated[Path, typer.Option("--dir", help="The mapping files' directory.")]


def _client(sandbox: Path | None) -> SalesforceClient:
    if sandbox is not None:
        return SalesforceClient(sandbox_settings(json.loads(sandbox.read_text())["salesforce"]))
    return SalesforceClient(settings_from_env())


PLAN_KINDS = ("create", "update", "end_date", "delete", "unchanged", "reject")


@app.command("plan")
def plan_command(
    partition: Annotated[
        list[str] | None,
        typer.Option("--partition", help="A daily partition (YYYY-MM-DD); repeat for more."),
    ] = None,
    entity: Annotated[
        list[str] | None, typer.Option("--entity", help="Only this entity; repeat for more.")
    ] = None,
    warehouse: Annotated[
        Path, typer.Option("--warehouse", help="The warehouse root to read staged rows from.")
    ] = Path(".m3sync"),
    sandbox: Annotated[
        Path | None,
        typer.Option(
            "--sandbox",
            help="Plan against the m3ter sandbox described by this sandbox.json instead of the "
            "org configured by the M3SYNC_M3TER_* variables.",
        ),
    ] = None,
    shown: Annotated[int, typer.Option("--show", help="Changed objects to list.")] = 20,
) -> None:
    """Dry run: what a load of the staged rows would change in m3ter, without writing."""
    unknown = sorted(set(entity or ()) - set(ORDER))
    if unknown:
        _fail(f"unknown entity {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    try:
        settings = (
            m3ter_sandbox_settings(json.loads(sandbox.read_text())["m3ter"])
            if sandbox
            else m3ter_settings_from_env()
        )
        client = M3terClient(settings)
        current = Current(client)
        results = [
            load(client, Warehouse(warehouse), e, partition or None, dry_run=True, current=current)
            for e in ORDER
            if not entity or e in entity
        ]
    except (M3terError, ValueError, OSError) as exc:
        _fail(f"plan failed: {exc}")
    counts = Table(title="Plan (nothing written)")
    for column in ("entity", *PLAN_KINDS):
        counts.add_column(column, justify="left" if column == "entity" else "right")
    changed = Table(title="Changes")
    for column in ("entity", "action", "source", "field", "before", "after"):
        changed.add_column(column)
    listed = 0
    for result in results:
        counts.add_row(result.entity, *(f"{result.actions.get(k, 0):,}" for k in PLAN_KINDS))
        for row in result.changed:
            for field_name, (before, after) in row["changes"].items():
                if listed < shown:
                    changed.add_row(
                        result.entity,
                        row["action"],
                        row["source"],
                        field_name,
                        str(before),
                        str(after),
                    )
                listed += 1
    console.print(counts)
    if listed:
        console.print(changed)
        if listed > shown:
            console.print(f"... and {listed - shown:,} more changed fields (--show N).")


def _fail(message: str) -> NoReturn:
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@mappings_app.command("validate")
def mappings_validate(
    directory: MappingsDir = Path("mappings"),
    from_org: Annotated[
        bool, typer.Option("--from-org", help="Validate the org's *Mapping__mdt records instead.")
    ] = False,
    sandbox: Sandbox = None,
) -> None:
    """Check a mapping set against the org's describe; print every problem at once."""
    try:
        client = _client(sandbox)
        mappings = read_org_mappings(client) if from_org else load_mappings(directory)
        problems = reference_problems(mappings, client.describe)
    except (MappingError, SalesforceExtractError, ValueError) as exc:
        _fail(str(exc))
    if problems:
        _fail("\n".join(problems))
    count = sum(1 for _ in mappings)
    console.print(f"{count} mappings valid against the org.")


@mappings_app.command("export")
def mappings_export(
    directory: MappingsDir = Path("mappings"),
    sandbox: Sandbox = None,
) -> None:
    """Write the org's *Mapping__mdt records as YAML mapping files."""
    try:
        mappings = read_org_mappings(_client(sandbox))
    except (MappingError, SalesforceExtractError, ValueError) as exc:
        _fail(str(exc))
    written = dump_mappings(mappings, directory)
    console.print(
        f"{sum(1 for _ in mappings)} mappings written to {len(written)} files in {directory}."
    )


def main() -> None:
    # `backfill_policy` is a beta parameter the extract assets rely on knowingly.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    app()

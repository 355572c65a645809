"""`m3sync sandbox up`: the embedded default's two HTTPS servers, serving until stopped."""

from __future__ import annotations

import enum
import json
import shlex
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import console, sandbox_app
from pipeline.sandbox.environment import sandbox_environment
from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.m3ter import M3terConfig
from pipeline.sandbox.m3ter.org import OrgSettings, parse_denied
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.salesforce.custom_objects import ObjectDefinitionError, load_objects
from pipeline.sandbox.salesforce.org import RECYCLE_BIN_DAYS
from pipeline.sandbox.salesforce.schema import OrgKind
from pipeline.sandbox.server import RunningSandbox, running_sandbox, wait_for_shutdown

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
OrgOption = Annotated[
    OrgKind,
    typer.Option(
        "--org",
        help="The demo org, or the demo org with Salesforce CPQ and CPQ deals (amendments, "
        "renewals); the CPQ org syncs with mappings/examples/cpq.",
    ),
]
Accounts = Annotated[
    int, typer.Option("--accounts", min=1, help="Demo org size: 20 OrderItems per account.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the demo org generator.")]
HistoryDays = Annotated[
    int | None,
    typer.Option(
        "--history-days", min=2, help="Days of demo org history before today (default 3 years)."
    ),
]
QuietDays = Annotated[
    int,
    typer.Option(
        "--quiet-days",
        min=0,
        help="Days at the start of the history that hold only the catalogue: an org whose "
        "activity is all in its last days.",
    ),
]
Objects = Annotated[
    Path | None,
    typer.Option(
        "--objects",
        exists=True,
        dir_okay=False,
        help="A YAML file of the org's own custom objects, beside the demo's (they start empty; "
        "records come from the REST API).",
    ),
]
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
        "drop=0.02,slow=0.02,expire=0.02,lost_answer=0.02'; KIND@COLLECTION=RATE strikes one "
        "collection only (lost_answer@commitments=0.2).",
    ),
]
IpLimit = Annotated[
    int,
    typer.Option(
        "--m3ter-ip-limit",
        min=0,
        help="m3ter requests per rolling 5 minutes per source IP (0: no limit).",
    ),
]
Deny = Annotated[
    str,
    typer.Option(
        "--m3ter-deny",
        help="Permissions the m3ter service user lacks, e.g. 'create:commitments,update:plans'.",
    ),
]
FaultSeed = Annotated[int, typer.Option("--fault-seed", help="Seed of the fault sequences.")]
SessionTtl = Annotated[
    float, typer.Option("--session-ttl", help="Salesforce session lifetime in seconds.")
]
ApiQuota = Annotated[
    int, typer.Option("--daily-api-requests", help="The org's daily API request allowance.")
]
QueryTimeoutRows = Annotated[
    int | None,
    typer.Option(
        "--query-timeout-rows",
        min=1,
        help="A REST query whose filter ORs terms on other objects' fields and matches more "
        "rows than this answers 400 QUERY_TIMEOUT (default: never).",
    ),
]
RecycleBinDays = Annotated[
    int,
    typer.Option(
        "--recycle-bin-days",
        min=0,
        help="Days a deleted record stays in the recycle bin (queryAll) before it is purged.",
    ),
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


def serve(
    title: str,
    state_dir: Path,
    salesforce: SalesforceConfig | None,
    m3ter: M3terConfig | None,
    salesforce_port: int,
    m3ter_port: int,
    then: Callable[[RunningSandbox], None] | None = None,
    keep_serving: bool = True,
) -> None:
    """Start the servers, print where they are, run `then`, and serve until interrupted."""
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
        if keep_serving:
            console.print("Serving; press Ctrl+C to stop.")
            wait_for_shutdown()


@sandbox_app.command("up")
def sandbox_up(
    port: Port = 8443,
    m3ter_port: M3terPort = 8444,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    only: Only = None,
    org_kind: OrgOption = "demo",
    accounts: Accounts = 200,
    seed: Seed = 1,
    history_days: HistoryDays = None,
    quiet_days: QuietDays = 0,
    objects: Objects = None,
    faults: Faults = "",
    m3ter_faults: M3terFaults = "",
    fault_seed: FaultSeed = 0,
    session_ttl: SessionTtl = 7200.0,
    daily_api_requests: ApiQuota = 100_000,
    query_timeout_rows: QueryTimeoutRows = None,
    recycle_bin_days: RecycleBinDays = RECYCLE_BIN_DAYS,
    m3ter_rate_limit: RateLimit = 50.0,
    m3ter_token_ttl: TokenTtl = 5 * 3600.0,
    m3ter_ip_limit: IpLimit = 20_000,
    m3ter_deny: Deny = "",
) -> None:
    """Start the sandbox servers on 127.0.0.1 and serve until stopped."""
    root = state_dir.resolve()
    salesforce = None
    m3ter = None
    if objects is not None:
        try:
            load_objects(objects)
        except ObjectDefinitionError as exc:
            raise typer.BadParameter(str(exc), param_hint="--objects") from exc
    if only in (None, Server.salesforce):
        salesforce = SalesforceConfig(
            state_dir=root / "salesforce",
            org=org_kind,
            accounts=accounts,
            seed=seed,
            history_days=history_days,
            quiet_days=quiet_days,
            session_ttl_seconds=session_ttl,
            daily_api_requests=daily_api_requests,
            query_timeout_rows=query_timeout_rows,
            recycle_bin_days=recycle_bin_days,
            faults=_faults(faults, fault_seed, "--faults"),
            objects=objects,
        )
    if only in (None, Server.m3ter):
        try:
            org = OrgSettings(denied=parse_denied(m3ter_deny))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--m3ter-deny") from exc
        m3ter = M3terConfig(
            state_dir=root / "m3ter",
            token_ttl_seconds=m3ter_token_ttl,
            rate_limit_per_second=m3ter_rate_limit or None,
            ip_limit=m3ter_ip_limit or None,
            faults=_faults(m3ter_faults, fault_seed, "--m3ter-faults"),
            org=org,
        )
    serve("Sandbox", state_dir, salesforce, m3ter, port, m3ter_port)


@sandbox_app.command("env")
def sandbox_env(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="The file to write (default: STATE_DIR/sandbox.env)."),
    ] = None,
) -> None:
    """Write the M3SYNC_* variables that configure m3sync for the running sandbox, as a real
    org and m3ter organization would be configured; load them with `set -a; . FILE; set +a`."""
    info_file = state_dir / "sandbox.json"
    if not info_file.is_file():
        raise typer.BadParameter(
            f"{info_file} does not exist: start the sandbox first", param_hint="--state-dir"
        )
    variables = sandbox_environment(json.loads(info_file.read_text()))
    target = out or state_dir / "sandbox.env"
    target.touch(mode=0o600, exist_ok=True)
    target.chmod(0o600)
    target.write_text(
        "".join(f"{name}={shlex.quote(value)}\n" for name, value in variables.items())
    )
    console.print(
        f"{len(variables)} variables written to {target} (mode 0600): "
        f"{', '.join(variables)}. Load them with: set -a; . {target}; set +a",
        highlight=False,
        soft_wrap=True,
    )

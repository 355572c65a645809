"""The `m3sync` command."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.sandbox.faults import FaultConfig
from pipeline.sandbox.salesforce.app import SalesforceConfig
from pipeline.sandbox.server import running_sandbox, wait_for_shutdown

app = typer.Typer(
    help="Sync Salesforce deals into m3ter billing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sandbox_app = typer.Typer(
    help="The embedded sandbox: a Salesforce org emulator over HTTPS.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")
console = Console()

DEFAULT_STATE_DIR = Path(".m3sync/sandbox")

StateDir = Annotated[
    Path,
    typer.Option("--state-dir", help="Where the sandbox keeps its state, CA and sandbox.json."),
]
Port = Annotated[
    int, typer.Option("--port", help="Salesforce org port on 127.0.0.1 (0: any free).")
]
Accounts = Annotated[
    int, typer.Option("--accounts", min=1, help="Demo org size: 20 OrderItems per account.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the demo org generator.")]
Faults = Annotated[
    str,
    typer.Option(
        "--faults",
        help="Injected fault rates, e.g. 'http500=0.05,http503=0.05,drop=0.02,slow=0.02,"
        "expire=0.02,bulk_fail=0.1'.",
    ),
]
FaultSeed = Annotated[int, typer.Option("--fault-seed", help="Seed of the fault sequence.")]
SessionTtl = Annotated[float, typer.Option("--session-ttl", help="Session lifetime in seconds.")]
ApiQuota = Annotated[
    int, typer.Option("--daily-api-requests", help="The org's daily API request allowance.")
]


def _config(
    state_dir: Path,
    accounts: int,
    seed: int,
    faults: str = "",
    fault_seed: int = 0,
    **settings: float,
) -> SalesforceConfig:
    try:
        fault_config = FaultConfig.parse(faults, seed=fault_seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from exc
    return SalesforceConfig(
        state_dir=state_dir.resolve() / "salesforce",
        accounts=accounts,
        seed=seed,
        faults=fault_config,
        **settings,
    )  # type: ignore[arg-type]


def _serve(title: str, state_dir: Path, port: int, config: SalesforceConfig) -> None:
    with ExitStack() as stack:
        with console.status(
            f"Starting the sandbox ({config.accounts} accounts, seed {config.seed})..."
        ):
            sandbox = stack.enter_context(running_sandbox(state_dir, port=port, salesforce=config))
        counts = Table(title=title)
        counts.add_column("object")
        counts.add_column("records", justify="right")
        for name, count in sandbox.salesforce.org.counts.items():
            counts.add_row(name, f"{count:,}")
        console.print(counts)
        console.out(json.dumps(sandbox.info(), indent=2), highlight=False)
        console.print(f"Written to {state_dir / 'sandbox.json'}. Press Ctrl+C to stop.")
        wait_for_shutdown()


@sandbox_app.command("up")
def sandbox_up(
    port: Port = 8443,
    state_dir: StateDir = DEFAULT_STATE_DIR,
    accounts: Accounts = 200,
    seed: Seed = 1,
    faults: Faults = "",
    fault_seed: FaultSeed = 0,
    session_ttl: SessionTtl = 7200.0,
    daily_api_requests: ApiQuota = 100_000,
) -> None:
    """Start the sandbox on 127.0.0.1 and serve until stopped."""
    config = _config(
        state_dir,
        accounts,
        seed,
        faults,
        fault_seed,
        session_ttl_seconds=session_ttl,
        daily_api_requests=daily_api_requests,
    )
    _serve("Salesforce org sandbox", state_dir, port, config)


@app.command()
def demo(
    state_dir: StateDir = DEFAULT_STATE_DIR,
    port: Port = 8443,
    accounts: Accounts = 200,
    seed: Seed = 1,
) -> None:
    """Start the sandbox with the demo org, show what it serves, and serve until stopped."""
    _serve("Demo org", state_dir, port, _config(state_dir, accounts, seed))


def main() -> None:
    app()

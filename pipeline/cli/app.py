"""The `m3sync` Typer application, its console, and how a command fails."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from pipeline.m3ter.settings import M3terSettings
from pipeline.m3ter.settings import sandbox_settings as m3ter_sandbox_settings
from pipeline.m3ter.settings import settings_from_env as m3ter_settings_from_env
from pipeline.warehouse import DEFAULT_ROOT

if TYPE_CHECKING:
    from pipeline.salesforce.client import SalesforceClient

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
setup_app = typer.Typer(
    help="What a real org needs before m3sync runs against it.", no_args_is_help=True
)
app.add_typer(setup_app, name="setup")
console = Console()


class Options:
    """Options of the whole command, read by `main` when a command fails."""

    verbose = False
    # Runs go to DAGSTER_HOME's run coordinator (its queue, the daemon, the code server named by
    # this workspace) instead of running in this process.
    launch = False
    workspace: Path | None = None


@app.callback()
def options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="On failure, show the whole traceback.")
    ] = False,
    launch: Annotated[
        bool,
        typer.Option(
            "--launch",
            help="Submit each run to DAGSTER_HOME's run coordinator (a deployment's queue, "
            "daemon and code server) and follow it, instead of running it in this process.",
        ),
    ] = False,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            envvar="M3SYNC_WORKSPACE",
            help="With --launch: the workspace file naming the deployment's code location "
            "(default: the project's workspace.yaml).",
        ),
    ] = None,
) -> None:
    Options.verbose = verbose
    Options.launch = launch
    Options.workspace = workspace


def fail(message: str) -> NoReturn:
    """Stop with a one-line reason and exit status 1."""
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)


WarehouseRoot = Annotated[
    Path | None,
    typer.Option("--warehouse", help="The warehouse root (default: $M3SYNC_WAREHOUSE or .m3sync)."),
]


def warehouse_root(given: Path | None = None) -> Path:
    """The warehouse a command reads or writes: the option, else $M3SYNC_WAREHOUSE, as the
    code location's resources see it."""
    return given or Path(os.environ.get("M3SYNC_WAREHOUSE") or DEFAULT_ROOT)


MappingsDir = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The mapping files' directory (default: the active mappings, $M3SYNC_MAPPINGS_DIR "
        "or the shipped mappings/).",
    ),
]


def mappings_directory(given: Path | None = None) -> Path:
    """The mapping files a command reads: the option, else the active ones the code location's
    runs read."""
    from pipeline.mapping.source import MappingSource

    return given or MappingSource.from_env(os.environ).directory


def salesforce_client(sandbox: Path | None) -> SalesforceClient:
    """A client of the org a command talks to: the sandbox `sandbox.json` describes, else the
    one the M3SYNC_SALESFORCE_* variables configure."""
    from pipeline.salesforce.client import SalesforceClient
    from pipeline.salesforce.settings import sandbox_settings, settings_from_env

    if sandbox is not None:
        return SalesforceClient(sandbox_settings(json.loads(sandbox.read_text())["salesforce"]))
    return SalesforceClient(settings_from_env())


def m3ter_settings(sandbox: Path | None) -> M3terSettings:
    """The m3ter organization a command talks to: the sandbox `sandbox.json` describes, else the
    one the M3SYNC_M3TER_* variables configure."""
    if sandbox:
        return m3ter_sandbox_settings(json.loads(sandbox.read_text())["m3ter"])
    return m3ter_settings_from_env()

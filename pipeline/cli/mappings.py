"""`m3sync mappings validate|export`: check a mapping set, or write the org's as YAML."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.cli.app import (
    MappingsDir,
    console,
    fail,
    mappings_app,
    mappings_directory,
    salesforce_client,
)
from pipeline.mapping.errors import MappingError
from pipeline.mapping.files import dump_mappings, load_mappings
from pipeline.mapping.source import writeback_on
from pipeline.mapping.validate import validate
from pipeline.salesforce.errors import SalesforceExtractError

if TYPE_CHECKING:
    from pipeline.mapping.spec import MappingSet
    from pipeline.salesforce.client import SalesforceClient

Sandbox = Annotated[
    Path | None,
    typer.Option(
        "--sandbox",
        help="Connect to the org sandbox described by this sandbox.json instead of the org "
        "configured by the M3SYNC_SALESFORCE_* variables.",
    ),
]


def _org_mappings(client: SalesforceClient) -> MappingSet:
    from pipeline.mapping.metadata import read_org_mappings

    return read_org_mappings(client)


@mappings_app.command("validate")
def mappings_validate(
    directory: MappingsDir = None,
    from_org: Annotated[
        bool, typer.Option("--from-org", help="Validate the org's *Mapping__mdt records instead.")
    ] = False,
    sandbox: Sandbox = None,
) -> None:
    """Check a mapping set against the org's describe; print every problem at once."""
    try:
        client = salesforce_client(sandbox)
        mappings = (
            _org_mappings(client) if from_org else load_mappings(mappings_directory(directory))
        )
        checked = validate(mappings, client.describe, writeback=writeback_on(os.environ))
    except (MappingError, SalesforceExtractError, ValueError) as exc:
        fail(str(exc))
    if checked.problems:
        fail("\n".join(checked.problems))
    count = sum(1 for _ in mappings)
    console.print(f"{count} mappings valid against the org.")
    for warning in checked.warnings:
        console.print(f"warning: {warning}", style="yellow", markup=False, soft_wrap=True)


@mappings_app.command("export")
def mappings_export(
    directory: Annotated[
        Path, typer.Option("--dir", help="The directory to write the mapping files to.")
    ] = Path("mappings"),
    sandbox: Sandbox = None,
) -> None:
    """Write the org's *Mapping__mdt records as YAML mapping files."""
    try:
        mappings = _org_mappings(salesforce_client(sandbox))
    except (MappingError, SalesforceExtractError, ValueError) as exc:
        fail(str(exc))
    written = dump_mappings(mappings, directory)
    console.print(
        f"{sum(1 for _ in mappings)} mappings written to {len(written)} files in {directory}."
    )

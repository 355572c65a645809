"""`m3sync setup salesforce`: the org set-up the active mappings need, as a deployable package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.app import (
    MappingsDir,
    console,
    fail,
    mappings_directory,
    salesforce_client,
    setup_app,
)
from pipeline.mapping.compiler import compile_mappings
from pipeline.mapping.errors import MappingError
from pipeline.mapping.files import load_mappings
from pipeline.salesforce.errors import SalesforceExtractError


@setup_app.command("salesforce")
def setup_salesforce(
    out: Annotated[Path, typer.Option("--out", help="Where to write the Salesforce DX project.")],
    directory: MappingsDir = None,
    from_org: Annotated[
        bool,
        typer.Option(
            "--from-org",
            help="Take field definitions from the org the M3SYNC_SALESFORCE_* variables "
            "configure (one that has the fields) instead of the embedded demo org.",
        ),
    ] = False,
    table: Annotated[
        bool, typer.Option("--table", help="Also print the custom fields as a Markdown table.")
    ] = False,
) -> None:
    """Write a Salesforce DX source package: the custom fields the mappings read, the status
    fields the write-back writes, the mapping types and a permission set that reads what the
    mappings read and edits only the status fields; deploy it with `sf project deploy start`."""
    from pipeline.sandbox.salesforce.describe import demo_describe
    from pipeline.setup.package import (
        PERMISSION_SET,
        created_fields,
        fields_table,
        read_fields,
        status_fields,
        write_package,
    )

    try:
        describe = salesforce_client(None).describe if from_org else demo_describe
        mapping_set = load_mappings(mappings_directory(directory))
        compiled = compile_mappings(mapping_set, describe)
        written = write_package(out, compiled, describe, writeback=mapping_set.writeback)
        created = created_fields(read_fields(compiled, describe))
        statuses = status_fields(mapping_set.writeback)
    except (MappingError, SalesforceExtractError, ValueError) as exc:
        fail(str(exc))
    console.print(
        f"{len(written)} files in {out}: {len(created)} custom fields, {len(statuses)} status "
        f"fields (mappings/writeback.yaml), the mapping types and permission set "
        f"{PERMISSION_SET}. Deploy with: sf project deploy start --source-dir "
        f"{out / 'force-app'} --target-org <alias>; then assign {PERMISSION_SET} to the "
        "integration user.",
        highlight=False,
        soft_wrap=True,
    )
    if table:
        console.print(
            fields_table(compiled, describe), highlight=False, markup=False, soft_wrap=True
        )


@setup_app.command("dagster")
def setup_dagster(
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="Steps each pool runs at once (default: the instance's pools default_limit, "
            "else 1; without it, pools that have a limit keep it).",
        ),
    ] = None,
) -> None:
    """Give the concurrency pools the code location's steps claim (`m3ter_api`,
    `salesforce_api`) their limits on DAGSTER_HOME's instance, before its first run: what a
    deployment on PostgreSQL needs once."""
    import dagster as dg

    from assets.definitions import defs
    from assets.pools import declared_pools, initialize_pools
    from pipeline.cli.home import dagster_home

    dagster_home()
    with dg.DagsterInstance.get() as instance:
        limits = initialize_pools(instance, declared_pools(defs()), limit)
    console.print(
        "Pools: " + ", ".join(f"{pool} {n} at a time" for pool, n in limits.items()),
        highlight=False,
    )

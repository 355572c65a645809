"""`m3sync plan`: what a load of the staged rows would change in m3ter, without writing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import WarehouseRoot, app, console, fail, m3ter_settings, warehouse_root
from pipeline.load.entities import ORDER
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.errors import M3terError
from pipeline.warehouse import Warehouse

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
    warehouse: WarehouseRoot = None,
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
        fail(f"unknown entity {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    from pipeline.load.current import Current
    from pipeline.load.run import load

    try:
        settings = m3ter_settings(sandbox)
        client = M3terClient(settings)
        current = Current(client)
        results = [
            load(
                client,
                Warehouse(warehouse_root(warehouse)),
                e,
                partition or None,
                dry_run=True,
                current=current,
            )
            for e in ORDER
            if not entity or e in entity
        ]
    except (M3terError, ValueError, OSError) as exc:
        fail(f"plan failed: {exc}")
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

"""`m3sync coverage`: which priced Salesforce lines bill in m3ter, and why the others do not."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.app import WarehouseRoot, app, console, fail, m3ter_settings, warehouse_root
from pipeline.m3ter.client import M3terClient
from pipeline.m3ter.errors import M3terError
from pipeline.warehouse import Warehouse


@app.command("coverage")
def coverage_command(
    by: Annotated[
        str | None, typer.Option("--by", help="'month': coverage per month of the lines' start.")
    ] = None,
    warehouse: WarehouseRoot = None,
    sandbox: Annotated[
        Path | None,
        typer.Option(
            "--sandbox",
            help="Read plan templates from the m3ter sandbox described by this sandbox.json "
            "instead of the org configured by the M3SYNC_M3TER_* variables.",
        ),
    ] = None,
) -> None:
    """Billing coverage of what is staged and loaded; writes the `load.coverage` view."""
    if by not in (None, "month"):
        fail(f"--by takes 'month', not {by!r}")
    from pipeline.load.coverage import coverage, template_products
    from pipeline.load.current import Current

    try:
        settings = m3ter_settings(sandbox)
        products = template_products(Current(M3terClient(settings)))
        found = coverage(Warehouse(warehouse_root(warehouse)), products)
    except (M3terError, ValueError, OSError) as exc:
        fail(f"coverage failed: {exc}")
    if by == "month":
        table = Table(title="Billing coverage by month")
        for column in ("month", "lines", "billable", "coverage"):
            table.add_column(column, justify="left" if column == "month" else "right")
        for month, lines, good in found.by_month:
            table.add_row(month, f"{lines:,}", f"{good:,}", f"{good / lines:.1%}" if lines else "")
        console.print(table)
    print_coverage(found.lines, found.billable, [str(f) for f in found.findings])


def print_coverage(lines: int, billable: int, findings: Sequence[str]) -> None:
    """How many priced lines bill in m3ter, and why the others do not, root by root."""
    share = billable / lines if lines else 1.0
    console.print(
        f"Billing coverage: {billable:,} of {lines:,} priced lines bill in m3ter ({share:.1%})."
    )
    for finding in findings:
        console.print(f"  not billed: {finding}", markup=False, highlight=False, soft_wrap=True)

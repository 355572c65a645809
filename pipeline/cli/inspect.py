"""`m3sync inspect [TABLE]`: the warehouse's tables, a table's rows, and rejects by reason."""

from __future__ import annotations

from typing import Annotated

import duckdb
import typer
from rich.table import Table

from pipeline.cli.app import WarehouseRoot, app, console, fail, warehouse_root
from pipeline.warehouse import Warehouse
from pipeline.warehouse.inspect import (
    head,
    journal_rejects,
    rejects_summary,
    tables,
)

REJECTS = ("rejects", "staged.rejects")
SHOWN_TEXT = 60  # characters of a value shown in a cell


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= SHOWN_TEXT else text[: SHOWN_TEXT - 1] + "…"


def _catalog_tables(warehouse: Warehouse) -> None:
    found = tables(warehouse)
    if not found:
        fail(f"{warehouse.catalog_path} has no tables yet: run `m3sync demo` or `m3sync run`.")
    table = Table(title=f"Tables in {warehouse.catalog_path}")
    for column in ("table", "rows", "files"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for info in found:
        rows = f"{info.rows:,}" if info.rows is not None else f"unreadable: {info.error}"
        table.add_row(info.qualified, rows, f"{info.files:,}")
    console.print(table)


def _rejects(warehouse: Warehouse) -> None:
    staged = Table(title="staged.rejects by reason")
    for column in ("entity", "check", "rows", "message", "example"):
        staged.add_column(column, justify="right" if column == "rows" else "left")
    for reason in rejects_summary(warehouse):
        more = f" (+{reason.messages - 1} other messages)" if reason.messages > 1 else ""
        staged.add_row(
            reason.entity,
            reason.check,
            f"{reason.rows:,}",
            reason.message + more,
            f"{reason.example_object} {reason.example_id}",
        )
    refused = Table(title="Refused by m3ter in their latest load (load.journal)")
    for column in ("entity", "status", "records", "message", "example"):
        refused.add_column(column, justify="right" if column == "records" else "left")
    for reject in journal_rejects(warehouse):
        refused.add_row(
            reject.entity,
            reject.status,
            f"{reject.records:,}",
            reject.message,
            f"{reject.example_object} {reject.example_id}",
        )
    for table in (staged, refused):
        console.print(table if table.row_count else f"{table.title}: none.")


@app.command("inspect")
def inspect_command(
    table: Annotated[
        str | None,
        typer.Argument(help="A table, e.g. staged.accounts or accounts; `rejects` by reason."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Rows to show.")] = 20,
    warehouse: WarehouseRoot = None,
) -> None:
    """Read the warehouse as an analyst does (read-only, also while a run writes)."""
    store = Warehouse(warehouse_root(warehouse))
    try:
        if table is None:
            _catalog_tables(store)
        elif table.strip().lower() in REJECTS:
            _rejects(store)
        else:
            rows = head(store, table, limit=limit)
            shown = Table(title=f"{rows.table} (first {len(rows.rows):,} rows)")
            for column in rows.columns:
                shown.add_column(column, overflow="fold")
            for row in rows.rows:
                shown.add_row(*(_cell(v) for v in row))
            console.print(shown)
    except (ValueError, duckdb.Error) as exc:
        fail(str(exc))

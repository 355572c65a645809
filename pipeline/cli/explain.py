"""`m3sync explain <Salesforce Id>`: one record, from the mapping that took it to its billing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.app import (
    MappingsDir,
    WarehouseRoot,
    app,
    console,
    fail,
    mappings_directory,
    warehouse_root,
)
from pipeline.mapping.files import load_mappings
from pipeline.warehouse import Warehouse

if TYPE_CHECKING:
    from pipeline.explain import Explanation

SHOWN = 80  # characters of a value shown


def _text(value: object) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _table(title: str, rows: tuple[dict[str, Any], ...], columns: tuple[str, ...]) -> None:
    if not rows:
        console.print(f"{title}: none.", highlight=False)
        return
    shown = Table(title=title, title_justify="left")
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*(_text(row.get(c)) for c in columns))
    console.print(shown)


def print_explanation(found: Explanation) -> None:
    console.print(
        f"[bold]{found.sobject} {found.record_id}[/bold]"
        if found.sobject
        else f"[bold]{found.record_id}[/bold]: no raw table holds it"
    )
    _table(
        "Extracted versions (raw)",
        found.raw_versions,
        ("_partition", "SystemModstamp", "IsDeleted", "_extracted_at"),
    )
    for taken in found.taken:
        latest = taken.versions[-1] if taken.versions else {}
        shown = Table(title=f"Mapping {taken.mapping} → {taken.entity}", title_justify="left")
        for column in ("m3ter field", "from", "as", "staged value"):
            shown.add_column(column, overflow="fold")
        for source in taken.sources:
            key = source.field.removeprefix("segment.").removeprefix("customFields.")
            value = latest.get(source.field, latest.get(key))
            if source.kind == "segment attribute":
                value = latest.get("segment")
            elif source.kind == "custom field":
                value = latest.get("customFields")
            shown.add_row(source.field, source.source, source.kind, _text(value))
        console.print(shown)
        _table(
            f"Staged versions of {taken.entity}",
            taken.versions,
            ("_partition", "_tombstone", "code", "_version_stamp", "_staged_at"),
        )
    _table(
        "Rejected (staged.rejects)",
        found.rejects,
        ("entity", "_partition", "check", "message"),
    )
    _table(
        "In m3ter (load.journal, load.id_map)",
        found.m3ter,
        ("entity", "m3ter_id", "code", "action", "status", "message", "last_write"),
    )
    if found.coverage is None:
        console.print("Coverage: not a priced line (or not measured yet).")
    elif found.coverage["billable"]:
        console.print("Coverage: bills in m3ter.")
    else:
        c = found.coverage
        console.print(
            f"Coverage: does not bill: {c['root_entity']} {c['root_key']}: {c['reason']}",
            highlight=False,
        )
    _table(
        "Written back to Salesforce (load.writeback, newest first)",
        found.writeback[:5],
        ("at", "status", "message", "m3ter_id", "result", "error"),
    )


@app.command("explain")
def explain_command(
    record_id: Annotated[str, typer.Argument(help="A Salesforce record Id (15 or 18 characters).")],
    warehouse: WarehouseRoot = None,
    directory: MappingsDir = None,
) -> None:
    """One record: the mappings that took it, each m3ter field's source, its staged versions,
    the m3ter objects it made, whether it bills and what Salesforce was told (warehouse only)."""
    if len(record_id) not in (15, 18) or not record_id.isalnum():
        fail(f"{record_id!r} is not a Salesforce Id (15 or 18 letters and digits)")
    from pipeline.explain import explain

    mappings = load_mappings(mappings_directory(directory))
    found = explain(Warehouse(warehouse_root(warehouse)), mappings, record_id)
    if found.sobject is None and not found.taken:
        fail(f"the warehouse holds no record {record_id} of {', '.join(found.objects)}")
    print_explanation(found)

"""Salesforce's live records against the warehouse, by Id: the third side of a full reconcile.

m3ter against the staged state (`load/drift.py`) cannot see a record the windows never
extracted, nor one Salesforce purged. One query of every live Id per object (Bulk API 2.0 past
the REST threshold) against the warehouse's latest version of each record tells both apart:

- **missing**: live in Salesforce, never in the warehouse. One whose stamp falls on a day the
  warehouse holds was *missed* by that day's window (its record became visible to the
  integration user, or committed later than the overlap, without its stamp moving): the
  refresh stages it. Any other day says what to extract; a day before the first partition is
  the operator's start date at work.
- **gone**: live in the warehouse, not in Salesforce (purged from the recycle bin, or hard
  deleted): the refresh (`extract/refresh.py`) turns these into tombstones.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.extract.objects import SourceObject
from pipeline.extract.pages import PageStager
from pipeline.extract.plan import STAMP, Column, FieldPlan
from pipeline.extract.run import ExtractSettings, download_query, raw_table
from pipeline.extract.window import select_clause
from pipeline.salesforce.client import SalesforceClient
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import literal

EXAMPLES = 5  # Ids listed per kind
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# The raw view's order of a record's versions (`raw_table`), as one comparable value.
VERSION_ORDER = "struct_pack(v := _version_stamp, e := _extracted_at)"


@dataclass(frozen=True)
class LiveIds:
    sobject: str
    live: int  # records Salesforce holds
    missing: int  # of them, never in the warehouse
    gone: int  # records the warehouse holds live that Salesforce no longer has
    missed: int = 0  # of the missing, those on days the warehouse holds (the refresh's)
    missing_days: tuple[str, ...] = ()  # the days (by stamp) the others fall on
    examples: dict[str, list[str]] = field(default_factory=dict)  # missing / gone -> Ids
    api_calls: int = 0


@contextmanager
def live_records(
    client: SalesforceClient, warehouse: Warehouse, plan: FieldPlan, settings: ExtractSettings
) -> Iterator[tuple[duckdb.DuckDBPyConnection, list[Path]]]:
    """Every live record of the plan's object (its columns) staged as Parquet, one query after
    the quota-floor check, and a DuckDB connection to compare them in, its memory bounded and
    spilling to disk; both are gone on exit."""
    client.ensure_quota(settings.quota_floor)
    work = warehouse.root / "tmp" / f"live-{plan.sobject.lower()}-{uuid.uuid4().hex}"
    work.mkdir(parents=True)
    try:
        stager = PageStager(
            plan,
            window=None,
            overlap=settings.overlap,
            extracted_at=dt.datetime.now(dt.UTC),
            directory=work / "staged",
            memory_mb=settings.memory_mb,
        )
        try:
            # Live records only (`query`): a record in the recycle bin is the windows' to see.
            _, files = download_query(
                client, plan, select_clause(plan), work / "pages", settings, stager, live=True
            )
            staged = stager.staged(files)
        finally:
            stager.close()
        con = duckdb.connect(
            config={
                "memory_limit": f"{settings.memory_mb}MB",
                "temp_directory": str(work / "spill"),
                "preserve_insertion_order": False,
            }
        )
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con, staged
        finally:
            con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def versions_sql(warehouse: Warehouse, table: Table) -> str | None:
    """Every version of every record the warehouse holds of `table`, earlier refreshes
    included; None while it holds none."""
    if not warehouse.partitions(table):
        return None
    glob = literal(str(warehouse.table_dir(table) / "*.parquet"))
    return f"read_parquet({glob}, union_by_name = true)"


def held_days(warehouse: Warehouse, table: Table) -> list[str]:
    """The daily partitions of `table` the warehouse holds (a refresh's partition is none)."""
    return [key for key in warehouse.partitions(table) if _DAY.fullmatch(key)]


def stamp_on_held_day(warehouse: Warehouse, table: Table) -> str:
    """A SQL predicate: the row's stamp falls on a day of `table` the warehouse holds."""
    days = ", ".join(literal(d) for d in held_days(warehouse, table)) or "NULL"
    return f"strftime(\"{STAMP}\", '%Y-%m-%d') IN ({days})"


def latest_versions(
    con: duckdb.DuckDBPyConnection,
    versions: str | None,
    empty: str,
    values: Mapping[str, str],
) -> None:
    """Temporary table `latest`: per record, each of `values` (name -> SQL expression) as its
    latest version has it, and `_latest`, that version's order (`VERSION_ORDER`).

    A hash aggregate (`arg_max`) instead of the raw view's ranking of every version: it holds
    one small row per record. With no `versions`, the table is empty, typed by `empty` (a
    relation with the columns the expressions read).
    """
    picked = "".join(f", arg_max({sql}, {VERSION_ORDER}) AS {name}" for name, sql in values.items())
    source = versions if versions is not None else f"(SELECT * FROM {empty} WHERE false)"
    con.execute(
        f"""CREATE TEMP TABLE latest AS SELECT "Id"{picked}, max({VERSION_ORDER}) AS _latest
            FROM {source} GROUP BY 1"""
    )


def compare_live_ids(
    client: SalesforceClient,
    warehouse: Warehouse,
    source: SourceObject,
    settings: ExtractSettings,
) -> LiveIds:
    """Every live Id of `source` in Salesforce against the warehouse's latest versions."""
    before = client.spent()
    described = {f["name"] for f in client.describe(source.name)["fields"]}
    plan = FieldPlan(
        source.name,
        (Column("Id", "id"), Column(STAMP, "datetime")),
        (),
        "IsDeleted" in described,
    )
    with live_records(client, warehouse, plan, settings) as (con, staged):
        found = _compare(con, warehouse, source, plan, staged)
    return LiveIds(**found, api_calls=(client.spent() - before).api_calls)


def compare_all_live_ids(
    client: SalesforceClient,
    warehouse: Warehouse,
    objects: list[SourceObject],
    settings: ExtractSettings,
) -> list[LiveIds]:
    """`compare_live_ids` for each daily-partitioned object of `objects` (an object read whole
    is read whole by every run: nothing can be missing or gone from it for long)."""
    return [compare_live_ids(client, warehouse, o, settings) for o in objects if o.partitioned]


def _compare(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    source: SourceObject,
    plan: FieldPlan,
    staged: list[Path],
) -> dict[str, object]:
    files = "[" + ", ".join(literal(str(p)) for p in staged) + "]"
    con.execute(f"CREATE TEMP VIEW live AS SELECT * FROM read_parquet({files})")
    deleted = 'coalesce("IsDeleted", false)' if plan.soft_delete else "false"
    versions = versions_sql(warehouse, raw_table(source))
    latest_versions(con, versions, "live", {"_deleted": deleted})
    held = stamp_on_held_day(warehouse, raw_table(source))
    con.execute(
        f'CREATE TEMP TABLE missing AS SELECT "Id", "{STAMP}", {held} AS _missed FROM live '
        'WHERE "Id" NOT IN (SELECT "Id" FROM latest)'
    )
    con.execute(
        'CREATE TEMP TABLE gone AS SELECT "Id" FROM latest WHERE NOT _deleted '
        'AND "Id" NOT IN (SELECT "Id" FROM live)'
    )
    (live, missing, missed, gone) = con.execute(
        "SELECT (SELECT count(*) FROM live), (SELECT count(*) FROM missing), "
        "(SELECT count(*) FROM missing WHERE _missed), (SELECT count(*) FROM gone)"
    ).fetchone() or (0, 0, 0, 0)
    days = tuple(
        str(row[0])
        for row in con.execute(
            f"SELECT DISTINCT strftime(\"{STAMP}\", '%Y-%m-%d') AS d FROM missing "
            "WHERE NOT _missed ORDER BY d"
        ).fetchall()
    )
    examples = {
        kind: [
            str(row[0])
            for row in con.execute(
                f'SELECT "Id" FROM {kind} ORDER BY "Id" LIMIT {EXAMPLES}'
            ).fetchall()
        ]
        for kind in ("missing", "gone")
    }
    return {
        "sobject": source.name,
        "live": int(live),
        "missing": int(missing),
        "missed": int(missed),
        "gone": int(gone),
        "missing_days": days,
        "examples": examples,
    }

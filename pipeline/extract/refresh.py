"""A refresh: every live record of an object read again, and what the windows could not see staged.

A daily window sees a record when its own or a parent's `SystemModstamp` moves, and a delete
while `queryAll` still returns it. A formula or roll-up field changes without either stamp
moving (Salesforce documents that formula fields do not update `SystemModstamp`), and a record
purged from the recycle bin (after 15 days, at once after a hard delete or an emptied bin) is
gone from `queryAll` too. The refresh reads the mapped fields of every live record in one query
(Bulk API 2.0 past the REST threshold), compares them with the warehouse's latest version of
each record, and writes only the differences into the object's `_refresh` raw partition:

- a record whose mapped values differ (its stamps aside) as a new version of itself: the same
  `_version_stamp`, a later `_extracted_at`, so the raw and staged views take it as latest;
- a record the warehouse holds live that Salesforce no longer has, as a tombstone
  (`IsDeleted = true`) versioned at the refresh: when it was deleted went with the purge, so its
  m3ter objects end the day after the refresh found it gone (ending them at the record's last
  known change could take back months of billing), as the load ends any delete's.

- a record Salesforce has that the warehouse never held, whose stamp falls on a day the
  warehouse holds, as it is: that day's window missed it (it became visible to the integration
  user, by a sharing rule or a permission, or committed after the overlap, with no stamp moving).

The partition keeps earlier refreshes' rows, so a tombstone outlives the re-extract of the
record's own day, which can no longer see it. Other records the warehouse never held (before
the first partition, or on days not extracted) are counted, not staged: which days to extract
is the operator's. Staging and loading the `_refresh` partition is the caller's
(`pipeline/refresh.py`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.extract.live import (
    VERSION_ORDER,
    latest_versions,
    live_records,
    stamp_on_held_day,
    versions_sql,
)
from pipeline.extract.objects import SourceObject
from pipeline.extract.plan import STAMP, FieldPlan, plan_fields
from pipeline.extract.run import ExtractSettings, raw_table
from pipeline.salesforce.client import SalesforceClient
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import identifier, literal

REFRESH = "_refresh"  # the raw and staged partition of what refreshes found


@dataclass(frozen=True)
class ObjectRefresh:
    sobject: str
    live: int  # records Salesforce holds
    changed: int  # whose mapped values differ from the warehouse's latest version
    gone: int  # that the warehouse holds live and Salesforce no longer has
    missed: int  # that Salesforce holds, the warehouse never did, on days it holds
    unknown: int  # that Salesforce holds and the warehouse never did, on other days
    api_calls: int
    bulk_jobs: int
    seconds: float


def compared_columns(plan: FieldPlan) -> list[str]:
    """The columns whose values a refresh compares: every mapped one, stamps aside."""
    return [c.path for c in plan.columns if c.path != STAMP and not c.path.endswith(f".{STAMP}")]


def refresh_object(
    client: SalesforceClient,
    warehouse: Warehouse,
    source: SourceObject,
    settings: ExtractSettings,
    plan: FieldPlan | None = None,
) -> ObjectRefresh:
    """Read every live record of `source` and write the differences to its `_refresh`
    partition (an empty one when there are none, so that staging finds it); `plan` is the
    extract's, so that the two read the same columns."""
    started = time.monotonic()
    before = client.spent()
    plan = plan or plan_fields(source, client.describe)
    with live_records(client, warehouse, plan, settings) as (con, staged):
        counts = _write_differences(con, warehouse, raw_table(source), plan, staged)
    spent = client.spent() - before
    return ObjectRefresh(
        sobject=source.name,
        **counts,
        api_calls=spent.api_calls,
        bulk_jobs=spent.bulk_jobs,
        seconds=time.monotonic() - started,
    )


def _write_differences(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    table: Table,
    plan: FieldPlan,
    staged: list[Path],
) -> dict[str, int]:
    """Compare the fresh rows with the latest version of each record (earlier refreshes
    included) and write the `_refresh` partition: its earlier rows, less the records found
    again, plus what this refresh found.

    Each side is reduced to one hash of the compared values per record, so the comparison
    holds three columns of a million records, not the records: a change is missed only when
    two different rows hash alike (64 bits).
    """
    files = "[" + ", ".join(literal(str(p)) for p in staged) + "]"
    con.execute(f"CREATE TEMP VIEW fresh AS SELECT * FROM read_parquet({files})")
    versions = versions_sql(warehouse, table)
    held = (
        {str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {versions}").fetchall()}
        if versions
        else set()
    )
    compared = compared_columns(plan)
    # A column the warehouse lacks (a field mapped since) differs for every record.
    comparable = bool(versions) and held >= set(compared)
    values = "hash(" + ", ".join(identifier(c) for c in compared) + ")"
    deleted = 'coalesce("IsDeleted", false)' if plan.soft_delete else "false"
    latest_versions(
        con,
        versions,
        "fresh",
        {"_values": values if comparable else "NULL::UBIGINT", "_deleted": deleted},
    )
    differs = f"{values} IS DISTINCT FROM l._values" if comparable else "true"
    con.execute(
        f"""CREATE TEMP TABLE found AS
            SELECT f.* REPLACE ('{REFRESH}' AS _partition) FROM fresh f
            JOIN latest l USING ("Id") WHERE {differs}"""
    )
    con.execute(
        f"""INSERT INTO found SELECT f.* REPLACE ('{REFRESH}' AS _partition) FROM fresh f
            WHERE "Id" NOT IN (SELECT "Id" FROM latest) AND {stamp_on_held_day(warehouse, table)}"""
    )
    con.execute(
        'CREATE TEMP TABLE gone AS SELECT "Id", _latest FROM latest WHERE NOT _deleted '
        'AND "Id" NOT IN (SELECT "Id" FROM fresh)'
    )
    (any_gone,) = con.execute("SELECT count(*) FROM gone").fetchone() or (0,)
    if plan.soft_delete and any_gone:
        # Whole rows only for the records gone: their latest version, versioned at the refresh.
        columns = ", ".join(identifier(c.path) for c in plan.columns if c.path != "IsDeleted")
        con.execute(
            f"""INSERT INTO found BY NAME
                SELECT {columns}, true AS "IsDeleted", $now AS _version_stamp,
                       '{REFRESH}' AS _partition, $now AS _extracted_at
                FROM {versions}
                WHERE ("Id", {VERSION_ORDER}) IN (SELECT ("Id", _latest) FROM gone)""",
            {"now": dt.datetime.now(dt.UTC).replace(tzinfo=None)},
        )
    (live, changed, gone, missed, unknown) = con.execute(
        f"""SELECT (SELECT count(*) FROM fresh),
                   (SELECT count(*) FROM found WHERE NOT {deleted}
                        AND "Id" IN (SELECT "Id" FROM latest)),
                   (SELECT count(*) FROM found WHERE {deleted}),
                   (SELECT count(*) FROM found WHERE "Id" NOT IN (SELECT "Id" FROM latest)),
                   (SELECT count(*) FROM fresh WHERE "Id" NOT IN (SELECT "Id" FROM latest)
                        AND "Id" NOT IN (SELECT "Id" FROM found))"""
    ).fetchone() or (0, 0, 0, 0, 0)
    # Earlier refreshes' rows stay while they are their record's latest version: one a later
    # extract superseded would otherwise be staged again over it by every refresh.
    earlier = warehouse.partition_path(table, REFRESH)
    kept = (
        f"""UNION ALL BY NAME SELECT r.* FROM read_parquet({literal(str(earlier))}) r
            JOIN latest l ON l."Id" = r."Id" AND l._latest = {VERSION_ORDER}
            WHERE r."Id" NOT IN (SELECT "Id" FROM found)"""
        if earlier.is_file()
        else ""
    )
    warehouse.write_partition(con, table, REFRESH, f"SELECT * FROM found {kept}")
    return {"live": live, "changed": changed, "gone": gone, "missed": missed, "unknown": unknown}

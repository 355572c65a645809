"""Lines that replace lines: which deleted record a new record continues.

Re-syncing a quote to its opportunity deletes the opportunity's line items and makes new ones
with new Ids (Salesforce Help, "Sync Quotes and Opportunities"); so can an integration that
rewrites an order's items. Keyed by Id, m3ter would see each line end and a new one start over
the same period: two pricings and two account plans where the deal has one line.

A new record continues a deleted one when, among the rows staged together, the old one was
deleted and the new one created within `GAP` of each other, and the two agree on every raw
column the mappings read (the agreement, the product, the dates and the price among them): a
replacement that carries a real change (another price) is a change, and ends the old line as
before. Equal lines pair in the order they went and came. `staged.successions` keeps each
pairing in the new record's partition, and a record's identity is the first record of its
chain, so a line re-synced twice keeps its first line's objects.

Lines whose mappings name an `identity` field (an external id, the quote line they came from)
take that instead, and nothing is matched.

Only rows staged in one run are paired: a replacement changed again before the day of its
creation was first extracted lies in a later partition than the delete, and is matched only
when a run stages both days (a backfill over them); otherwise its old line ends and it starts,
as without successions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb

from pipeline.extract.objects import SourceObject
from pipeline.extract.plan import CREATED, STAMP
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.catalog import View
from pipeline.warehouse.sql import identifier, literal

SUCCESSIONS = Table(
    "staged", "successions", latest_by=("_source_object", "_source_id"), order_by=("_staged_at",)
)
# How far apart a line's delete and its replacement's creation may be. A re-sync writes both in
# one transaction; an hour leaves room for an integration that deletes and inserts in batches.
GAP = dt.timedelta(hours=1)
# Columns that differ between a line and its replacement by nature, not by content.
_SYSTEM = frozenset(
    {
        "Id",
        "IsDeleted",
        CREATED,
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        STAMP,
    }
)
_MAX_CHAIN = 64  # replacements followed back from one record


def continued(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    obj: SourceObject,
    relation: str,
    keys: Sequence[str],
    staged_at: dt.datetime,
) -> str:
    """Record the successions `relation` (the raw rows of `obj` for `keys`) shows, and return
    it with the identity each record continues (`_continues`, null for none).

    Only daily partitions are matched: the refresh's partition holds values and purges found
    long after they happened, where a line and another's delete are near in time by chance.
    Raw partitions extracted before m3sync read creation dates match nothing. Both still take
    the identities recorded before.
    """
    columns = [str(row[0]) for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    if CREATED in columns and all(_is_day(key) for key in keys):
        _record(con, warehouse, obj, relation, columns, keys, staged_at)
    if not any(_files(warehouse, obj)):
        return f"(SELECT *, NULL::VARCHAR AS _continues FROM {relation})"
    roots = _roots_sql(warehouse, obj)
    return (
        f"(SELECT r.*, i.identity AS _continues FROM {relation} r "
        f'LEFT JOIN ({roots}) i ON i._source_id = r."Id")'
    )


def _is_stamp(column: str) -> bool:
    return column.endswith(f".{STAMP}")


def _is_day(key: str) -> bool:
    try:
        dt.date.fromisoformat(key)
    except ValueError:
        return False
    return True


def _files(warehouse: Warehouse, obj: SourceObject) -> Iterator[Path]:
    return warehouse.table_dir(SUCCESSIONS).glob(f"{obj.table}.*.parquet")


def _record(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    obj: SourceObject,
    relation: str,
    columns: Sequence[str],
    keys: Sequence[str],
    staged_at: dt.datetime,
) -> None:
    """Pair the deleted and new lines of `relation` and write them as `keys`' successions."""
    compared = [
        c for c in columns if c not in _SYSTEM and not c.startswith("_") and not _is_stamp(c)
    ]
    values = (
        "struct_pack("
        + (", ".join(f"{identifier(c)} := {identifier(c)}" for c in compared) or "x := 1")
        + ")"
    )
    # Rows pair by a hash of their values (one pass, no text built per row); a pair is then
    # checked value by value, so a collision pairs nothing.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _successions AS
            WITH rows AS (
                SELECT "Id", coalesce("IsDeleted", false) AS deleted,
                       {identifier(CREATED)} AS created, _version_stamp AS stamp,
                       _partition, hash({values}) AS _h
                FROM {relation}),
            deletes AS (
                SELECT "Id", stamp, stamp AS moment, _h FROM rows WHERE deleted
                QUALIFY row_number() OVER (PARTITION BY "Id" ORDER BY stamp DESC) = 1),
            creates AS (
                -- a line as it was first staged (it may be gone again by the last day staged),
                -- made within GAP of another equal line's delete
                SELECT "Id", stamp, created AS moment, _partition, _h
                FROM rows r
                WHERE EXISTS (
                    SELECT 1 FROM deletes d
                    WHERE d._h = r._h AND d."Id" <> r."Id"
                      AND abs(epoch(r.created) - epoch(d.moment)) <= {GAP.total_seconds()})
                QUALIFY row_number() OVER (PARTITION BY "Id" ORDER BY stamp) = 1),
            -- equal lines pair in the order they went and came, so that a chain of
            -- replacements staged together pairs link by link
            gone AS (
                SELECT *, row_number() OVER (PARTITION BY _h ORDER BY moment, "Id") AS n
                FROM deletes),
            new AS (
                SELECT *, row_number() OVER (PARTITION BY _h ORDER BY moment, "Id") AS n
                FROM creates),
            paired AS (
                SELECT new."Id" AS new_id, new.stamp AS new_stamp, gone."Id" AS gone_id,
                       gone.stamp AS gone_stamp, new._partition
                FROM new JOIN gone USING (_h, n)
                WHERE abs(epoch(new.moment) - epoch(gone.moment)) <= {GAP.total_seconds()}
                  AND new."Id" <> gone."Id"),
            versions AS (
                SELECT "Id", _version_stamp AS stamp, {values} AS v FROM {relation}
                WHERE "Id" IN (SELECT new_id FROM paired UNION ALL SELECT gone_id FROM paired))
            SELECT {literal(obj.name)} AS _source_object, p.new_id AS _source_id,
                   p.gone_id AS continues, p._partition,
                   TIMESTAMP {literal(str(staged_at))} AS _staged_at
            FROM paired p
            JOIN versions a ON a."Id" = p.new_id AND a.stamp = p.new_stamp
            JOIN versions b ON b."Id" = p.gone_id AND b.stamp = p.gone_stamp
            WHERE a.v IS NOT DISTINCT FROM b.v"""
    )
    warehouse.write_partitions(
        con,
        SUCCESSIONS,
        "SELECT * FROM _successions",
        [],
        "_partition",
        cover=keys,
        file_prefix=f"{obj.table}.",
    )


def _roots_sql(warehouse: Warehouse, obj: SourceObject) -> str:
    """Each continuing record of `obj` with the first record of its chain."""
    latest = View(SUCCESSIONS, warehouse.table_dir(SUCCESSIONS) / f"{obj.table}.*.parquet").sql()
    return f"""
        WITH RECURSIVE succession AS (SELECT _source_id, continues FROM ({latest})),
        chain AS (
            SELECT _source_id, continues AS identity, 1 AS depth FROM succession
            UNION ALL
            SELECT c._source_id, s.continues, c.depth + 1
            FROM chain c JOIN succession s ON s._source_id = c.identity
            WHERE c.depth < {_MAX_CHAIN})
        SELECT _source_id, arg_max(identity, depth) AS identity FROM chain GROUP BY _source_id"""

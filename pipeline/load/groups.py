"""Staged rows -> m3ter objects: the rows of a mapping that computes its code, one object per code.

The staged tables keep one row per Salesforce record, so that every value traces back to one
record. A mapping whose code is computed (`{OrderId}_{Product2.M3ter_Product_Code__c}`) makes
every row whose code comes out the same one m3ter object: each field the rows set either agrees
across them or is combined by the mapping's rule (`combine: {startDate: earliest}`); rows that
disagree are one refusal that names them and the field. Rows of one object may be staged in
different partitions, so an object is always rebuilt from the latest version of every record
that is (or was) in it, in one statement over the staged table: a line deleted from a group
leaves the object to the others, and the last one gone ends it.

Rows of other mappings are objects of their own, as staged.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from pipeline.load.journal import refused_sql
from pipeline.mapping.compiler import COMBINE, GROUPED, IDENTITY
from pipeline.mapping.spec import Entity
from pipeline.staging.stage import staged_table
from pipeline.warehouse import Warehouse
from pipeline.warehouse.catalog import View
from pipeline.warehouse.sql import identifier, literal
from pipeline.warehouse.tables import Table

OBJECTS = "_objects"  # the temporary table `objects()` fills
SOURCES = "_sources"  # the source records an object is made of
TOUCHED = "_touched"  # whether the partitions being loaded name the object
DISAGREEMENT = "_disagreement"  # why the rows of one object cannot make it
REFUSED = "_refused"  # why an object cannot be what it asks for, in m3ter's terms
SHOWN_SOURCES = 5  # records named in a message before "and N more"

_NUMERIC = ("DOUBLE", "FLOAT", "BIGINT", "INTEGER", "HUGEINT", "DECIMAL", "SMALLINT")
_SCALAR = (*_NUMERIC, "VARCHAR", "DATE", "TIMESTAMP", "BOOLEAN")


def objects(
    warehouse: Warehouse,
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    partitions: Sequence[str] | None,
) -> bool:
    """Fill the temporary table `_objects` with every m3ter object the staged rows of `entity`
    make, each marked `_touched` when `partitions` (all when None) name it or the last load of
    it refused it (`journal.refused_sql`); False if nothing is staged."""
    table = staged_table(entity)
    if not warehouse.partitions(table):
        return False
    everything = Table(table.schema, table.name)
    versions = View(everything, warehouse.table_dir(table) / "*.parquet").sql()
    columns = con.execute(f"DESCRIBE SELECT * FROM {table.sql}").fetchall()
    names = [str(c[0]) for c in columns]
    has_groups = GROUPED in names

    def in_partitions(alias: str = "") -> str:
        if not partitions:
            return "true"
        return (
            f"({alias}_partition IN (SELECT unnest($partitions)) OR "
            f"({alias}_source_object, {alias}_source_id) IN (SELECT * FROM _retried))"
        )

    params = {"partitions": list(partitions)} if partitions else {}
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _retried AS {refused_sql(warehouse)}", {"entity": entity}
    )
    grouped = f"coalesce({identifier(GROUPED)}, false)" if has_groups else "false"
    con.execute(f"CREATE OR REPLACE TEMP TABLE _latest AS SELECT * FROM {table.sql}")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _memberships AS
            SELECT DISTINCT _source_object, _source_id, code FROM ({versions})
            WHERE {grouped} AND NOT _tombstone AND code IS NOT NULL"""
        if has_groups
        else "CREATE OR REPLACE TEMP TABLE _memberships AS SELECT _source_object, _source_id, "
        "code FROM _latest WHERE false"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _touched_codes AS
            SELECT _source_object, code FROM _latest
            WHERE {in_partitions()} AND {grouped} AND NOT _tombstone
            UNION
            SELECT m._source_object, m.code FROM _memberships m
            JOIN _latest l USING (_source_object, _source_id) WHERE {in_partitions("l.")}
            UNION
            SELECT _source_object, _source_id FROM _retried""",
        params,
    )
    data = [(name, str(kind)) for name, kind, *_ in columns if not name.startswith("_")]
    # A record's object passes to the line that replaced it (`staging/successions.py`): of the
    # rows of one identity, the live one holds it, and while none is live the latest tombstone
    # ends it (once).
    identity = (
        f"coalesce({identifier(IDENTITY)}, _source_id)" if IDENTITY in names else "_source_id"
    )
    singles = f"""
        SELECT * EXCLUDE (_held, _rank) FROM (
            SELECT *, [_source_id] AS {SOURCES}, NULL::VARCHAR AS {DISAGREEMENT},
                   {in_partitions()} AS {TOUCHED},
                   bool_or(NOT _tombstone) OVER same AS _held,
                   row_number() OVER (same ORDER BY _version_stamp DESC, _source_id) AS _rank
            FROM _latest l
            WHERE NOT ({grouped} AND NOT _tombstone)
              AND NOT (_tombstone AND EXISTS (
                  SELECT 1 FROM _memberships m
                  WHERE m._source_object = l._source_object AND m._source_id = l._source_id))
            WINDOW same AS (PARTITION BY _source_object, {identity}))
        WHERE NOT _tombstone OR (NOT _held AND _rank = 1)"""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {OBJECTS} AS
            {singles}
            UNION ALL BY NAME {_groups_sql(names, data, grouped)}
            UNION ALL BY NAME {_gone_sql(grouped)}""",
        params,
    )
    return True


def _groups_sql(names: Sequence[str], data: Sequence[tuple[str, str]], grouped: str) -> str:
    """One row per computed code with a live record in it."""
    rules = f"any_value({identifier(COMBINE)})" if COMBINE in names else "[]::VARCHAR[]"
    values = []
    problems = []
    for name, kind in data:
        if name == "code":
            continue
        column = identifier(name)
        values.append(f"{_combined(column, name, kind, rules)} AS {column}")
        ruled = f"len(list_filter({rules}, lambda r: starts_with(r, {literal(name + ':')}))) > 0"
        differ = f"(count(DISTINCT {column}) > 1 OR count({column}) BETWEEN 1 AND count(*) - 1)"
        shown = (
            f"array_to_string(list_sort(list_distinct(list(coalesce(CAST({column} AS VARCHAR), "
            "'blank')))), ' / ')"
        )
        problems.append(
            f"CASE WHEN NOT {ruled} AND {differ} THEN {literal(name + ' (')} || {shown} || ')' END"
        )
    problems.append(
        "CASE WHEN count(DISTINCT _mapping) > 1 THEN 'mapping (' || "
        "array_to_string(list_sort(list_distinct(list(_mapping))), ' / ') || ')' END"
    )
    meta = {
        "_source_id": "code",
        "_mapping": "min(_mapping)",
        "_version_stamp": "max(_version_stamp)",
        "_tombstone": "false",
        "_partition": "max(_partition)",
        "_staged_at": "max(_staged_at)",
    }
    for name in names:
        if name.startswith("_") and name not in meta:
            meta[name] = f"any_value({identifier(name)})"
    selected = ", ".join(
        [*values, *(f"{expr} AS {identifier(name)}" for name, expr in meta.items())]
    )
    sources = f"list(_source_id ORDER BY _source_id) AS {SOURCES}"
    listed = f"list_filter([{', '.join(problems)}], lambda p: p IS NOT NULL)"
    return f"""
        SELECT * EXCLUDE (_problems),
            CASE WHEN len(_problems) > 0 THEN
                _source_object || ' records ' || array_to_string(list_slice({SOURCES}, 1,
                    {SHOWN_SOURCES}), ', ')
                || CASE WHEN len({SOURCES}) > {SHOWN_SOURCES}
                        THEN ' and ' || (len({SOURCES}) - {SHOWN_SOURCES}) || ' more' ELSE '' END
                || ' make one object (code ' || code || ') but disagree on '
                || array_to_string(_problems, '; ')
                || ': give them one value, or the field a combine rule in the mapping'
            END AS {DISAGREEMENT},
            EXISTS (SELECT 1 FROM _touched_codes t
                    WHERE t._source_object = g._source_object AND t.code = g.code) AS {TOUCHED}
        FROM (
            SELECT _source_object, code, {selected}, {sources}, {listed} AS _problems
            FROM _latest WHERE {grouped} AND NOT _tombstone
            GROUP BY _source_object, code
        ) g"""


def _combined(column: str, name: str, kind: str, rules: str) -> str:
    """A field's value for the object: its combine rule applied, else the rows' one value."""
    if not kind.upper().startswith(_SCALAR) or kind.upper().endswith("[]"):
        return f"any_value({column})"
    branches = [
        ("earliest", f"CASE WHEN count({column}) < count(*) THEN NULL ELSE min({column}) END"),
        ("latest", f"CASE WHEN count({column}) < count(*) THEN NULL ELSE max({column}) END"),
        ("min", f"min({column})"),
        ("max", f"max({column})"),
    ]
    if kind.upper().startswith(_NUMERIC):
        branches.append(("sum", f"CAST(sum({column}) AS {kind})"))
    cases = " ".join(
        f"WHEN list_contains({rules}, {literal(f'{name}:{rule}')}) THEN {expr}"
        for rule, expr in branches
    )
    return f"CASE {cases} ELSE any_value({column}) END"


def _gone_sql(grouped: str) -> str:
    """A tombstone per computed code that records were in and none is now: the object ends."""
    return f"""
        SELECT m._source_object, m.code AS _source_id, m.code, true AS _tombstone,
            max(l._version_stamp) AS _version_stamp, max(l._partition) AS _partition,
            list(m._source_id ORDER BY m._source_id) AS {SOURCES},
            NULL::VARCHAR AS {DISAGREEMENT},
            EXISTS (SELECT 1 FROM _touched_codes t
                    WHERE t._source_object = m._source_object AND t.code = m.code) AS {TOUCHED}
        FROM _memberships m JOIN _latest l USING (_source_object, _source_id)
        WHERE NOT EXISTS (
            SELECT 1 FROM _latest v
            WHERE v._source_object = m._source_object AND v.code = m.code
              AND {grouped} AND NOT v._tombstone)
        GROUP BY m._source_object, m.code"""

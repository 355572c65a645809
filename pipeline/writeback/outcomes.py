"""Each Salesforce record's sync outcome, in the connector's vocabulary, from the warehouse.

A record's outcome sums up the m3ter objects it makes (its staged rows, each with the latest
journaled action), its current rejects, and, for a line, its billing coverage
(`load/coverage.py`), which names the root of a cascade ("account 001…: …"); an agreement
(an order, an opportunity) fails when any of its lines does not bill. The rule, first match:

- `Failed`: a line that does not bill (the root coverage names), a reject, an object m3ter
  refused (the first in load order), or an agreement one of whose lines does not bill;
- `Delete Failed`: an object it no longer makes (deselected) that m3ter would not end;
- `Pending Deletion`: an object it no longer makes, not ended yet;
- `Not Synced`: an object not loaded yet, or every object ended (it is no longer selected);
- `Success`: every object held by m3ter as staged, every line billable.

Records deleted in Salesforce are left out: there is nothing to write to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.coverage import COVERAGE
from pipeline.load.journal import latest_journal_sql
from pipeline.load.supersede import staged_columns
from pipeline.mapping.spec import ENTITIES, Entity
from pipeline.mapping.targets import has_code
from pipeline.mapping.writeback import StatusFields
from pipeline.staging.stage import latest_rejects_sql
from pipeline.warehouse import Warehouse
from pipeline.warehouse.sql import literal, no_rows

OUTCOMES = "_outcomes"
# The m3ter object a record's `m3ter_id` names: the first of these it makes.
_ID_PREFERENCE: tuple[Entity, ...] = (
    "accounts",
    "contracts",
    "pricings",
    "account_plans",
    "commitments",
    "plans",
    "plan_groups",
    "plan_group_links",
    "compound_aggregations",
)
# The states of an object other than ended: one of them means the record is not all ended.
_LIVE = "['ok', 'pending', 'pending_delete', 'failed', 'delete_failed']"
_SINGULAR = {e: e.removesuffix("s").replace("_", " ") for e in ENTITIES}


def _singular_sql(column: str) -> str:
    cases = " ".join(f"WHEN {literal(e)} THEN {literal(n)}" for e, n in _SINGULAR.items())
    return f"CASE {column} {cases} ELSE {column} END"


def _made_columns(entity: Entity) -> str:
    return "_source_object, _source_id, _partition, _tombstone" + (
        ", code" if has_code(entity) else ""
    )


def _rank(entities: Sequence[Entity]) -> str:
    """SQL ranking `o.entity` by its place in `entities`."""
    cases = " ".join(f"WHEN {literal(e)} THEN {i}" for i, e in enumerate(entities))
    return f"CASE o.entity {cases} END"


def outcomes(
    warehouse: Warehouse,
    con: duckdb.DuckDBPyConnection,
    rows: Sequence[StatusFields],
    soft_delete: Mapping[str, bool],
) -> None:
    """Fill temp table `_outcomes` (source_object, source_id, status, message, m3ter_id,
    synced_at) for every record of the objects `rows` write back; `soft_delete` says which of
    them have `IsDeleted`."""
    objects = [r.object for r in rows]
    made = " UNION ALL ".join(
        f"SELECT {literal(e)} AS entity, _source_object, _source_id, _partition, "
        f"_tombstone::BOOLEAN AS _tombstone, {'code' if has_code(e) else 'NULL::VARCHAR'} "
        f"AS code FROM ({staged_columns(warehouse, e, _made_columns(e))})"
        for e in ENTITIES
    )
    lines = (
        f"SELECT source_object, source_id, agreement, billable, root_entity, root_key, reason "
        f"FROM {COVERAGE.sql}"
        if warehouse.partitions(COVERAGE)
        else no_rows(
            "source_object, source_id, agreement, billable BOOLEAN, root_entity, root_key, reason"
        )
    )
    deleted = " UNION ALL ".join(
        f'SELECT {literal(name)} AS source_object, "Id" AS source_id '
        f'FROM {raw_table(SourceObject(name)).sql} WHERE "IsDeleted"'
        for name in objects
        if soft_delete.get(name) and warehouse.partitions(raw_table(SourceObject(name)))
    ) or no_rows("source_object, source_id")
    # The first object on the way to billing that failed explains the rest (coverage's rule).
    order = _rank(ENTITIES)
    preference = _rank(_ID_PREFERENCE)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {OUTCOMES} AS
        WITH made AS ({made}),
        journal AS ({latest_journal_sql(warehouse)}),
        rejected AS ({latest_rejects_sql(warehouse)}),
        current_rejects AS (
            SELECT r.* FROM rejected r LEFT JOIN made m USING (entity, _source_object, _source_id)
            WHERE m._partition IS NULL OR r._partition > m._partition
        ),
        objects AS (
            SELECT m.entity, m._source_object AS source_object, m._source_id AS source_id,
                j.message, j.m3ter_id, j."at",
                CASE
                    WHEN m._tombstone THEN CASE
                        WHEN j.status IS NULL THEN 'ended'
                        WHEN j.status IN ('rejected', 'failed') THEN 'delete_failed'
                        WHEN j.action IN ('delete', 'unchanged') THEN 'ended'
                        ELSE 'pending_delete' END
                    WHEN j.status IN ('applied', 'unchanged')
                         AND j.action IN ('create', 'update', 'unchanged') THEN 'ok'
                    WHEN j.status IN ('rejected', 'failed') THEN 'failed'
                    ELSE 'pending'
                END AS state
            FROM made m LEFT JOIN journal own ON own.entity = m.entity
             AND own.source_object = m._source_object AND own.source_id = m._source_id
            -- a line grouped into another's object (a plan per agreement and product): the
            -- object's latest entry, by its code
            LEFT JOIN (SELECT * FROM journal QUALIFY row_number() OVER (
                           PARTITION BY entity, code ORDER BY "at" DESC) = 1) grouped
              ON own.entity IS NULL AND grouped.entity = m.entity AND grouped.code = m.code
            CROSS JOIN LATERAL (SELECT coalesce(own.status, grouped.status) AS status,
                coalesce(own.action, grouped.action) AS action,
                coalesce(own.message, grouped.message) AS message,
                coalesce(own.m3ter_id, grouped.m3ter_id) AS m3ter_id,
                coalesce(own."at", grouped."at") AS "at") j
            WHERE m._source_object IN (SELECT unnest(?))
        ),
        lines AS (
            SELECT *, CASE
                WHEN billable THEN NULL
                WHEN root_entity = 'pricings' AND root_key = source_id THEN reason
                ELSE {_singular_sql("root_entity")} || ' ' || root_key || ': ' || reason
            END AS why FROM ({lines})
        ),
        agreements AS (
            SELECT agreement AS source_id, count(*) AS lines,
                count(*) FILTER (NOT billable) AS unbilled, min(why) AS why
            FROM lines WHERE agreement IS NOT NULL GROUP BY agreement
        ),
        records AS (
            SELECT DISTINCT source_object, source_id FROM objects
            UNION SELECT _source_object, _source_id FROM current_rejects
            WHERE _source_object IN (SELECT unnest(?))
        ),
        judged AS (
            SELECT r.source_object, r.source_id,
                (SELECT min(message) FROM current_rejects c WHERE c._source_object =
                    r.source_object AND c._source_id = r.source_id) AS rejected,
                (SELECT arg_min({_singular_sql("o.entity")} || ': '
                        || coalesce(o.message, 'refused'), {order})
                   FROM objects o WHERE o.source_object = r.source_object
                   AND o.source_id = r.source_id AND o.state = 'failed') AS refused,
                l.why AS line_why,
                CASE WHEN a.unbilled > 0 THEN a.unbilled || ' of ' || a.lines
                    || CASE WHEN a.lines = 1 THEN ' line does' ELSE ' lines do' END
                    || ' not bill: ' || a.why END AS agreement_why,
                (SELECT arg_min({_singular_sql("o.entity")} || ': '
                        || coalesce(o.message, 'refused'), {order})
                   FROM objects o WHERE o.source_object = r.source_object
                   AND o.source_id = r.source_id AND o.state = 'delete_failed') AS delete_failed,
                (SELECT list(o.state) FROM objects o WHERE o.source_object = r.source_object
                   AND o.source_id = r.source_id) AS states,
                (SELECT arg_min(o.m3ter_id, {preference}) FROM objects o
                   WHERE o.source_object = r.source_object AND o.source_id = r.source_id
                   AND o.state = 'ok' AND o.m3ter_id IS NOT NULL) AS m3ter_id,
                (SELECT max(o."at") FROM objects o WHERE o.source_object = r.source_object
                   AND o.source_id = r.source_id) AS synced_at
            FROM records r
            LEFT JOIN lines l ON l.source_object = r.source_object AND l.source_id = r.source_id
            LEFT JOIN agreements a ON a.source_id = r.source_id
            WHERE NOT EXISTS (SELECT 1 FROM ({deleted}) d
                              WHERE d.source_object = r.source_object
                              AND d.source_id = r.source_id)
        )
        SELECT source_object, source_id,
            CASE
                WHEN coalesce(line_why, rejected, refused, agreement_why) IS NOT NULL
                    THEN 'Failed'
                WHEN delete_failed IS NOT NULL THEN 'Delete Failed'
                WHEN list_contains(states, 'pending_delete') THEN 'Pending Deletion'
                WHEN list_contains(states, 'pending') THEN 'Not Synced'
                WHEN len(states) > 0 AND NOT list_has_any(states, {_LIVE})
                    THEN 'Not Synced'
                ELSE 'Success'
            END AS status,
            CASE
                WHEN coalesce(line_why, rejected, refused, agreement_why) IS NOT NULL
                    THEN coalesce(line_why, rejected, refused, agreement_why)
                WHEN delete_failed IS NOT NULL THEN delete_failed
                WHEN list_contains(states, 'pending_delete')
                    THEN 'no longer selected: its m3ter objects end with the next load'
                WHEN list_contains(states, 'pending') THEN 'not loaded into m3ter yet'
                WHEN len(states) > 0 AND NOT list_has_any(states, {_LIVE})
                    THEN 'no longer selected: its m3ter objects have ended'
            END AS message,
            m3ter_id, synced_at
        FROM judged
    """,
        [objects, objects],
    )

"""The load's records in the warehouse, and what they tell the next run.

- `load.journal`: every action of every run with its outcome;
- `load.id_map`: per source record, the m3ter object it made (its latest journaled entry);
- `load.pending`: the creates a run was about to send, written before the first of them.

m3ter has no idempotency key, so a create whose answer never came (or whose run died before it
journaled) may have been applied. A record with a pending create and no settled journal entry
after it is *uncertain*: the next run looks for its object before making it again. Every other
record not in the id map was never made by m3sync, and is created without a lookup.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from pipeline.mapping.spec import Entity
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import no_rows

if TYPE_CHECKING:
    from pipeline.load.reconcile import Action, Outcome

JOURNAL = Table("load", "journal")
ID_MAP = Table(
    "load", "id_map", latest_by=("entity", "source_object", "source_id"), order_by=("at",)
)
PENDING = Table("load", "pending")
Key = tuple[str, str]  # (source object, source id)


@dataclass(frozen=True)
class Known:
    """What the warehouse knows of one entity's m3ter objects."""

    ids: dict[Key, str] = field(default_factory=dict)  # source record -> m3ter id
    codes: dict[str, str] = field(default_factory=dict)  # code -> m3ter id
    uncertain: frozenset[Key] = frozenset()  # creates that may have been applied

    @classmethod
    def read(cls, warehouse: Warehouse, entity: Entity) -> Known:
        con = warehouse.connect()
        try:
            ids: dict[Key, str] = {}
            codes: dict[str, str] = {}
            if warehouse.partitions(ID_MAP):
                for source_object, source_id, code, m3ter_id in con.execute(
                    f"SELECT source_object, source_id, code, m3ter_id FROM {ID_MAP.sql} "
                    "WHERE entity = ? AND m3ter_id IS NOT NULL",
                    [entity],
                ).fetchall():
                    ids[(source_object, source_id)] = m3ter_id
                    if code:
                        codes[code] = m3ter_id
            return cls(ids, codes, frozenset(_uncertain(warehouse, con, entity)))
        finally:
            con.close()


class Knowledge:
    """What the warehouse knows of each entity's objects, read once per load (nothing, for a
    load without a warehouse behind it)."""

    def __init__(self, warehouse: Warehouse | None) -> None:
        self._warehouse = warehouse
        self._known: dict[Entity, Known] = {}

    def of(self, entity: Entity) -> Known:
        if entity not in self._known:
            self._known[entity] = (
                Known.read(self._warehouse, entity) if self._warehouse is not None else Known()
            )
        return self._known[entity]


def latest_journal_sql(warehouse: Warehouse) -> str:
    """Each record's latest settled journal entry per entity (a plan is not an outcome)."""
    if not warehouse.partitions(JOURNAL):
        return no_rows(
            "entity, source_object, source_id, code, action, status, message, m3ter_id, "
            '"at" TIMESTAMP'
        )
    return f"""SELECT entity, source_object, source_id, code, action, status, message, m3ter_id,
            "at"
        FROM {JOURNAL.sql} WHERE status <> 'planned'
        QUALIFY row_number() OVER (
            PARTITION BY entity, source_object, source_id ORDER BY "at" DESC) = 1"""


def refused_sql(warehouse: Warehouse) -> str:
    """SQL (parameter `$entity`): the records whose latest outcome is a refusal the load made
    itself (a reference m3ter does not hold yet, a rival, rows that disagree). Each load plans
    them again whatever partitions it loads: what they wait for (an account staged in a later
    partition, say) may be in m3ter now, and planning them again writes nothing otherwise."""
    if not warehouse.partitions(JOURNAL):
        return (
            "SELECT NULL::VARCHAR AS _source_object, NULL::VARCHAR AS _source_id "
            "WHERE $entity IS NULL AND false"
        )
    return f"""SELECT source_object AS _source_object, source_id AS _source_id
        FROM {JOURNAL.sql} WHERE entity = $entity
        QUALIFY row_number() OVER (
            PARTITION BY source_object, source_id ORDER BY "at" DESC) = 1
            AND "action" = 'reject'"""


def _uncertain(warehouse: Warehouse, con: duckdb.DuckDBPyConnection, entity: Entity) -> list[Key]:
    """Records whose latest create was pending with nothing settled since, or failed."""
    settled = (
        f"""SELECT source_object, source_id, max("at") AS at FROM {JOURNAL.sql}
            WHERE entity = $entity AND status <> 'failed' GROUP BY ALL"""
        if warehouse.partitions(JOURNAL)
        else "SELECT NULL::VARCHAR AS source_object, NULL::VARCHAR AS source_id, "
        "NULL::TIMESTAMP AS at WHERE false"
    )
    queries = []
    if warehouse.partitions(PENDING):
        queries.append(
            f"""SELECT p.source_object, p.source_id FROM (
                    SELECT source_object, source_id, max("at") AS at FROM {PENDING.sql}
                    WHERE entity = $entity GROUP BY ALL) p
                LEFT JOIN ({settled}) s USING (source_object, source_id)
                WHERE s.at IS NULL OR s.at < p.at"""
        )
    if warehouse.partitions(JOURNAL):
        queries.append(
            f"""SELECT source_object, source_id FROM {JOURNAL.sql} WHERE entity = $entity
                QUALIFY row_number() OVER (
                    PARTITION BY source_object, source_id ORDER BY "at" DESC) = 1
                AND "action" = 'create' AND status = 'failed'"""
        )
    if not queries:
        return []
    rows = con.execute(" UNION ".join(queries), {"entity": entity}).fetchall()
    return [(source_object, source_id) for source_object, source_id in rows]


def write_pending(
    warehouse: Warehouse, entity: Entity, run_id: str, actions: Sequence[Action]
) -> None:
    """The creates (and adoptions) a run is about to send, before it sends the first."""
    if not actions:
        return
    frame = pd.DataFrame(
        {
            "entity": entity,
            "source_object": [a.source_object for a in actions],
            "source_id": [a.source_id for a in actions],
            "code": [a.code for a in actions],
            "run_id": run_id,
            "at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        }
    )
    con = duckdb.connect()
    try:
        con.register("pending", frame)
        warehouse.write_partition(
            con,
            PENDING,
            f"{entity}.{run_id}",
            "SELECT entity::VARCHAR AS entity, source_object::VARCHAR AS source_object, "
            "source_id::VARCHAR AS source_id, code::VARCHAR AS code, run_id::VARCHAR AS run_id, "
            '"at"::TIMESTAMP AS "at" FROM pending',
        )
    finally:
        con.close()


def write_journal(
    warehouse: Warehouse, entity: Entity, run_id: str, outcomes: Sequence[Outcome]
) -> None:
    """One journal file and one id-map file per run and entity."""
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "at": at,
            "entity": entity,
            "partition": [o.action.partition for o in outcomes],
            "source_object": [o.action.source_object for o in outcomes],
            "source_id": [o.action.source_id for o in outcomes],
            "code": [o.action.code for o in outcomes],
            "action": [o.action.kind for o in outcomes],
            "status": [o.status for o in outcomes],
            "m3ter_id": [
                None if o.action.kind == "delete" and o.status == "applied" else o.m3ter_id
                for o in outcomes
            ],
            "version": pd.array([o.version for o in outcomes], dtype="Int64"),
            "message": [o.message for o in outcomes],
            "changes": [json.dumps(o.action.changes, default=str) for o in outcomes],
        },
        columns=[
            "run_id",
            "at",
            "entity",
            "partition",
            "source_object",
            "source_id",
            "code",
            "action",
            "status",
            "m3ter_id",
            "version",
            "message",
            "changes",
        ],
    )
    con = duckdb.connect()
    try:
        con.register("outcomes", frame)
        key = f"{entity}.{run_id}"
        typed = (
            'SELECT run_id::VARCHAR AS run_id, "at"::TIMESTAMP AS "at", entity::VARCHAR AS entity, '
            '"partition"::VARCHAR AS "partition", source_object::VARCHAR AS source_object, '
            "source_id::VARCHAR AS source_id, code::VARCHAR AS code, "
            '"action"::VARCHAR AS "action", status::VARCHAR AS status, '
            "m3ter_id::VARCHAR AS m3ter_id, version::BIGINT AS version, "
            "message::VARCHAR AS message, changes::VARCHAR AS changes FROM outcomes"
        )
        warehouse.write_partition(con, JOURNAL, key, typed)
        warehouse.write_partition(
            con,
            ID_MAP,
            key,
            f'SELECT entity, source_object, source_id, code, m3ter_id, version, "at" '
            f"FROM ({typed}) WHERE status IN ('applied', 'unchanged')",
        )
    finally:
        con.close()

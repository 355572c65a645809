"""One Salesforce record, explained from the warehouse: what took it, what it made, whether it
bills, and what Salesforce was told (m3ter's connector shows this as its Sync Record component).

Everything is read from the warehouse and the mappings, with no Dagster and no API call, so it
works while a run writes and on a copy of the warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.extract.live import versions_sql
from pipeline.extract.objects import SourceObject
from pipeline.extract.run import raw_table
from pipeline.load.coverage import COVERAGE
from pipeline.load.journal import ID_MAP, JOURNAL, latest_journal_sql
from pipeline.mapping.segments import parse_segments
from pipeline.mapping.spec import ENTITIES, Entity, MappingSet
from pipeline.staging.stage import REJECTS, staged_table
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.sql import no_rows
from pipeline.writeback.journal import WRITEBACK


@dataclass(frozen=True)
class Source:
    """One m3ter field of a mapping and where its value comes from."""

    field: str
    source: str  # a Salesforce path, a literal, or a segment's value
    kind: str  # field | custom field | segment attribute | hard-coded


@dataclass(frozen=True)
class Taken:
    """A mapping that took the record, with the staged versions it made."""

    entity: Entity
    mapping: str
    sources: tuple[Source, ...]
    versions: tuple[dict[str, Any], ...]  # oldest first: partition, tombstone, code, ...


@dataclass(frozen=True)
class Explanation:
    record_id: str
    sobject: str | None
    raw_versions: tuple[dict[str, Any], ...] = ()
    taken: tuple[Taken, ...] = ()
    rejects: tuple[dict[str, Any], ...] = ()
    m3ter: tuple[dict[str, Any], ...] = ()  # entity, m3ter id, code, last action and status
    coverage: dict[str, Any] | None = None
    writeback: tuple[dict[str, Any], ...] = ()  # latest attempts, newest first
    objects: tuple[str, ...] = field(default=(), repr=False)  # the objects searched


def _rows(con: Any, sql: str, params: Sequence[object] = ()) -> tuple[dict[str, Any], ...]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return tuple(dict(zip(names, row, strict=True)) for row in cursor.fetchall())


def sources_of(mappings: MappingSet, entity: Entity, name: str) -> tuple[Source, ...]:
    """Each m3ter field the mapping sets and where from: segment attributes and custom fields
    marked as such."""
    record = next((r for r in mappings[entity] if r.name == name), None)
    if record is None:
        return ()
    found = [Source(k, v, "field") for k, v in record.fields.items()]
    found += [
        Source(f"customFields.{k}", v, "custom field") for k, v in record.custom_fields.items()
    ]
    found += [Source(k, repr(v), "hard-coded") for k, v in record.hardcoded.items()]
    for entry in parse_segments(record.segments).entries:
        value = repr(entry.value) if entry.quoted else entry.value
        found.append(Source(f"segment.{entry.key}", value, "segment attribute"))
    return tuple(found)


def explain(warehouse: Warehouse, mappings: MappingSet, record_id: str) -> Explanation:
    """Everything the warehouse knows of `record_id` (15 or 18 characters)."""
    objects = tuple(dict.fromkeys(r.object for _, r in mappings))
    con = warehouse.connect()
    try:
        sobject: str | None = None
        raw_versions: tuple[dict[str, Any], ...] = ()
        full_id = record_id
        for name in objects:
            versions = versions_sql(warehouse, raw_table(SourceObject(name)))
            if versions is None:
                continue
            found = _rows(
                con,
                f'SELECT * FROM {versions} WHERE "Id" = ? OR "Id"[:15] = ? '
                'ORDER BY "_version_stamp", "_extracted_at"',
                [record_id, record_id[:15]],
            )
            if found:
                sobject, raw_versions, full_id = name, found, str(found[0]["Id"])
                break
        taken: list[Taken] = []
        for entity in ENTITIES:
            versions = versions_sql(warehouse, staged_table(entity))
            if versions is None:
                continue
            rows = _rows(
                con,
                f"SELECT * EXCLUDE (_fields) FROM {versions} WHERE _source_id = ? "
                'ORDER BY "_version_stamp", "_staged_at"',
                [full_id],
            )
            for mapping in dict.fromkeys(str(r["_mapping"]) for r in rows):
                mine = tuple(r for r in rows if str(r["_mapping"]) == mapping)
                taken.append(Taken(entity, mapping, sources_of(mappings, entity, mapping), mine))
        return Explanation(
            full_id,
            sobject,
            raw_versions,
            tuple(taken),
            _where(warehouse, con, REJECTS, "_source_id", full_id, "_partition"),
            _m3ter(warehouse, con, full_id),
            next(iter(_where(warehouse, con, COVERAGE, "source_id", full_id, None)), None),
            _where(warehouse, con, WRITEBACK, "source_id", full_id, '"at" DESC'),
            objects,
        )
    finally:
        con.close()


def _where(
    warehouse: Warehouse, con: Any, table: Table, column: str, value: str, order: str | None
) -> tuple[dict[str, Any], ...]:
    if not warehouse.partitions(table):
        return ()
    ordered = f" ORDER BY {order}" if order else ""
    return _rows(con, f"SELECT * FROM {table.sql} WHERE {column} = ?{ordered}", [value])


def _m3ter(warehouse: Warehouse, con: Any, record_id: str) -> tuple[dict[str, Any], ...]:
    if not warehouse.partitions(JOURNAL):
        return ()
    ids = (
        f"SELECT entity, source_id, m3ter_id AS held_id, version FROM {ID_MAP.sql}"
        if warehouse.partitions(ID_MAP)
        else no_rows("entity, source_id, held_id, version BIGINT")
    )
    return _rows(
        con,
        f"""SELECT j.entity, coalesce(i.held_id, j.m3ter_id) AS m3ter_id, j.code, j.action,
                j.status, j.message, j."at" AS last_write, i.version
            FROM ({latest_journal_sql(warehouse)}) j
            LEFT JOIN ({ids}) i USING (entity, source_id)
            WHERE j.source_id = ?
            ORDER BY j.entity""",
        [record_id],
    )

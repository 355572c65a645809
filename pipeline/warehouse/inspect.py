"""What `m3sync inspect` shows: the catalog's tables, a few rows of one, and why rows were refused.

Everything is read through the catalog file opened read-only, exactly as an analyst opens it:
writers never open that file in place (they rename a rebuilt one over it), so a read-only
session neither waits for a running writer nor makes one wait. Each call opens the catalog,
runs its queries and closes it again, so the next call sees the latest rebuild.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb

from pipeline.warehouse.sql import identifier
from pipeline.warehouse.tables import SCHEMAS, Table
from pipeline.warehouse.warehouse import Warehouse

REJECTS = "staged.rejects"
JOURNAL = "load.journal"
# A partition deleted between a view's file glob and the read of that file fails the query;
# run again, the glob no longer lists it.
_ATTEMPTS = 3
_RETRY_WAIT = 0.05

T = TypeVar("T")


@dataclass(frozen=True)
class TableInfo:
    """One table (view) of the catalog and its size.

    `files` counts partition files: one per partition, but one per entity and partition for
    `staged.rejects` and one per entity and run for the `load` tables. `rows` is None, and
    `error` says why, when the view could not be read.
    """

    schema: str
    name: str
    rows: int | None
    files: int
    error: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class TableRows:
    """The first rows of one table, in a stable order (`ORDER BY ALL`)."""

    table: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class RejectReason:
    """Rows of `staged.rejects` that one entity's stage refused for one check.

    `message` is the check's most frequent message (`messages` counts the distinct ones), and
    `example_object`/`example_id` name a source record refused with exactly that message.
    """

    entity: str
    check: str
    message: str
    rows: int
    messages: int
    example_object: str
    example_id: str


@dataclass(frozen=True)
class JournalReject:
    """Records whose latest load ended `rejected` or `failed`, with the same m3ter message.

    Only each record's latest run counts, so a record refused once and loaded since is not
    listed, and one refused in every run is listed once.
    """

    entity: str
    status: str
    message: str
    records: int
    example_object: str
    example_id: str
    latest_run: str


def tables(warehouse: Warehouse) -> list[TableInfo]:
    """Every table and view of schemas raw, staged and load, with its row count.

    An empty list when nothing was written yet (there is no catalog). A view that cannot be
    read is listed with its error rather than failing the listing.
    """
    with _catalog(warehouse) as con:
        if con is None:
            return []
        names = _names(con)
        if not names:
            return []
        try:
            counts = _retrying(lambda: _count_all(con, names))
            errors: dict[str, str] = {}
        except duckdb.Error:
            counts, errors = _count_each(con, names)
    return [
        TableInfo(
            schema,
            name,
            counts.get((schema, name)),
            len(warehouse.partitions(Table(schema, name))),
            errors.get(f"{schema}.{name}"),
        )
        for schema, name in names
    ]


def head(
    warehouse: Warehouse,
    name: str,
    limit: int = 20,
    where: Mapping[str, object] | None = None,
) -> TableRows:
    """The first `limit` rows of one table, optionally only those whose columns equal `where`.

    `name` is `schema.table`, or a bare table name when only one schema has it (`accounts` is
    `staged.accounts`). It is looked up in the catalog and only the catalog's own names reach
    the SQL, quoted; `where` columns are checked against the table's columns and its values are
    bound as parameters (a string matches the column's text form, None matches NULL).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative integer: {limit!r}")
    with _catalog(warehouse) as con:
        names = _names(con) if con is not None else []
        schema, table = resolve(name, names)
        assert con is not None  # a name resolved, so the catalog exists
        source = f"{identifier(schema)}.{identifier(table)}"
        columns = _retrying(lambda: _columns(con, source))
        conditions, params = _conditions(f"{schema}.{table}", columns, where or {})
        sql = f"SELECT * FROM {source}{conditions} ORDER BY ALL LIMIT ?"
        rows = _retrying(lambda: con.execute(sql, [*params, limit]).fetchall())
    return TableRows(f"{schema}.{table}", columns, rows)


def resolve(name: str, available: list[tuple[str, str]]) -> tuple[str, str]:
    """The catalog's (schema, table) that `name` means; a ValueError listing them otherwise."""
    wanted = name.strip().lower()
    if "." in wanted:
        matches = [key for key in available if f"{key[0]}.{key[1]}" == wanted]
    else:
        matches = [key for key in available if key[1] == wanted]
    if len(matches) == 1:
        return matches[0]
    if not available:
        raise ValueError(f"no table {name!r}: the warehouse has no tables yet")
    listed = ", ".join(f"{schema}.{table}" for schema, table in (matches or available))
    if matches:
        raise ValueError(f"table name {name!r} is ambiguous: say which of {listed}")
    raise ValueError(f"no table {name!r}; the tables are: {listed}")


def rejects_summary(warehouse: Warehouse) -> list[RejectReason]:
    """`staged.rejects` by entity and check, the most frequent first."""
    sql = f"""
        WITH by_message AS (
            SELECT entity, "check", message, count(*) AS n,
                   arg_min(_source_object, _source_id) AS example_object,
                   min(_source_id) AS example_id
            FROM {_quoted(REJECTS)}
            GROUP BY ALL
        )
        SELECT entity, "check",
               first(message ORDER BY n DESC, message) AS message,
               sum(n)::BIGINT AS rows,
               count(*) AS messages,
               first(example_object ORDER BY n DESC, message) AS example_object,
               first(example_id ORDER BY n DESC, message) AS example_id
        FROM by_message
        GROUP BY ALL
        ORDER BY rows DESC, entity, "check"
    """
    found = _query_if_present(warehouse, REJECTS, sql)
    return [
        RejectReason(entity, check, message, int(rows), int(messages), obj, source_id)
        for entity, check, message, rows, messages, obj, source_id in found
    ]


def journal_rejects(warehouse: Warehouse) -> list[JournalReject]:
    """Records m3ter refused (or that failed) in their latest load, by entity and message."""
    sql = f"""
        WITH latest AS (
            SELECT * FROM {_quoted(JOURNAL)}
            QUALIFY rank() OVER (
                PARTITION BY entity, source_object, source_id ORDER BY "at" DESC
            ) = 1
        )
        SELECT entity, status, coalesce(message, '') AS message,
               count(DISTINCT (source_object, source_id)) AS records,
               arg_min(source_object, source_id) AS example_object,
               min(source_id) AS example_id,
               arg_max(run_id, "at") AS latest_run
        FROM latest
        WHERE status IN ('rejected', 'failed')
        GROUP BY ALL
        ORDER BY records DESC, entity, status, message
    """
    found = _query_if_present(warehouse, JOURNAL, sql)
    return [
        JournalReject(entity, status, message, int(records), obj, source_id, latest_run)
        for entity, status, message, records, obj, source_id, latest_run in found
    ]


@contextlib.contextmanager
def _catalog(warehouse: Warehouse) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The catalog opened read-only, as `duckdb -readonly` does; None before the first write.

    Never read-write: that would create the file if missing and lock out every reader.
    """
    try:
        con = duckdb.connect(str(warehouse.catalog_path), read_only=True)
    except duckdb.IOException:
        if warehouse.catalog_path.exists():
            raise
        yield None
        return
    try:
        yield con
    finally:
        con.close()


def _names(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of every table and view in the warehouse's schemas, sorted."""
    found = con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND list_contains(?, table_schema) "
        "ORDER BY 1, 2",
        [list(SCHEMAS)],
    ).fetchall()
    return [(str(schema), str(name)) for schema, name in found]


def _count_all(
    con: duckdb.DuckDBPyConnection, names: list[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Every table's row count in one statement."""
    sql = " UNION ALL ".join(
        f"SELECT ? AS s, ? AS t, count(*) AS n FROM {identifier(schema)}.{identifier(name)}"
        for schema, name in names
    )
    params = [part for key in names for part in key]
    return {(s, t): int(n) for s, t, n in con.execute(sql, params).fetchall()}


def _count_each(
    con: duckdb.DuckDBPyConnection, names: list[tuple[str, str]]
) -> tuple[dict[tuple[str, str], int], dict[str, str]]:
    """Row counts one table at a time, so a broken view costs only its own count."""
    counts: dict[tuple[str, str], int] = {}
    errors: dict[str, str] = {}
    for key in names:
        try:
            counts.update(_retrying(functools.partial(_count_all, con, [key])))
        except duckdb.Error as error:
            errors[f"{key[0]}.{key[1]}"] = str(error)
    return counts, errors


def _columns(con: duckdb.DuckDBPyConnection, source: str) -> tuple[str, ...]:
    described = con.execute(f"SELECT * FROM {source} LIMIT 0").description
    return tuple(column[0] for column in described)


def _conditions(
    table: str, columns: tuple[str, ...], where: Mapping[str, object]
) -> tuple[str, list[object]]:
    """` WHERE ...` comparing known columns to bound values (empty when there is no filter)."""
    clauses: list[str] = []
    params: list[object] = []
    for column, value in where.items():
        if column not in columns:
            raise ValueError(f"{table} has no column {column!r}; its columns are: {columns}")
        quoted = identifier(column)
        if value is None:
            clauses.append(f"{quoted} IS NULL")
        elif isinstance(value, str):
            clauses.append(f"CAST({quoted} AS VARCHAR) = ?")
            params.append(value)
        else:
            clauses.append(f"{quoted} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _query_if_present(warehouse: Warehouse, qualified: str, sql: str) -> list[tuple[Any, ...]]:
    """`sql`'s rows, or none when the catalog has no `qualified` table yet."""
    with _catalog(warehouse) as con:
        if con is None or tuple(qualified.split(".")) not in _names(con):
            return []
        return _retrying(lambda: con.execute(sql).fetchall())


def _quoted(qualified: str) -> str:
    schema, name = qualified.split(".")
    return f"{identifier(schema)}.{identifier(name)}"


def _retrying(read: Callable[[], T]) -> T:
    """`read`, again after a file vanished under it (a writer replaced or removed a partition)."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return read()
        except duckdb.IOException:
            if attempt == _ATTEMPTS:
                raise
            time.sleep(_RETRY_WAIT * attempt)
    raise AssertionError("unreachable")

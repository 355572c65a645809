"""From downloaded result pages to typed raw rows, in one DuckDB statement.

Bulk API pages (CSV) are read by `read_csv` with the column types describe gives; REST pages
(JSON records, parents nested) by `read_json_objects` and JSON paths. Either way the statement adds
the row's version stamp, its partition and the extraction time, and streams: one query returns
each record once, and the raw table's view keeps one row per `Id` across partitions and re-runs
(the newest `(version, extraction)`), which is where rows seen twice meet.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

from pipeline.extract.plan import Column, FieldPlan
from pipeline.extract.window import WHOLE, Window

BULK_DATETIME = "%Y-%m-%dT%H:%M:%S.%gZ"
REST_DATETIME = "%Y-%m-%dT%H:%M:%S.%g%z"
# CSV read buffer: twice DuckDB's default longest line (2 MB), a fraction of a bulk page.
CSV_BUFFER_BYTES = 4 << 20
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _json_value(column: Column, text: str) -> str:
    """`text` (the field's JSON value as text) converted to the column's type."""
    if column.duckdb_type == "TIMESTAMP":
        return f"timezone('UTC', strptime({text}, '{REST_DATETIME}'))"
    if column.duckdb_type == "VARCHAR":
        return text
    return f"CAST({text} AS {column.duckdb_type})"


def _source(plan: FieldPlan, files: Sequence[Path], fmt: str) -> tuple[str, list[object]]:
    """A FROM-able relation with one typed column per planned path."""
    pages = [str(f) for f in files if f.stat().st_size > 0]
    if not pages:
        columns = ", ".join(f"NULL::{c.duckdb_type} AS {quote(c.path)}" for c in plan.columns)
        return f"(SELECT {columns} WHERE false)", []
    if fmt == "csv":
        types = {c.path: c.duckdb_type for c in plan.columns}
        # A bounded read buffer: by default DuckDB reads up to 32 MB of a file at once (a whole
        # bulk page), which would make a page's typing cost more memory than its rows.
        return (
            "read_csv(?, header = true, columns = ?, delim = ',', quote = '\"', "
            f"escape = '\"', timestampformat = '{BULK_DATETIME}', auto_detect = false, "
            f"buffer_size = {CSV_BUFFER_BYTES})",
            [pages, types],
        )
    if fmt == "json":
        # One extraction of every path per record: each record's JSON is parsed once (a call per
        # path would parse it once per column, and DuckDB would hold every parse in memory).
        for column in plan.columns:
            if not _PATH.match(column.path):
                raise ValueError(f"unexpected field path {column.path!r}")
        paths = ", ".join(f"'$.{c.path}'" for c in plan.columns)
        columns = ", ".join(
            f"{_json_value(c, f'v[{n}]')} AS {quote(c.path)}"
            for n, c in enumerate(plan.columns, start=1)
        )
        return (
            f"(SELECT {columns} FROM (SELECT json_extract_string(json, [{paths}]) AS v "
            "FROM read_json_objects(?, format = 'auto')))",
            [pages],
        )
    raise ValueError(f"unknown page format {fmt!r}")


def raw_rows_sql(
    plan: FieldPlan,
    files: Sequence[Path],
    fmt: str,
    *,
    window: Window | None,
    overlap: dt.timedelta,
    extracted_at: dt.datetime,
) -> tuple[str, list[object]]:
    """The raw rows of one extract with `_version_stamp`, `_partition` and `_extracted_at`.

    A row's version is its newest stamp, its own or a parent's; it lands in the partition of
    that version (rows caught by the overlap go to the window's first partition). Rows whose
    version is past the window belong to a later partition's run and are left to it.
    """
    source, params = _source(plan, files, fmt)
    version = "greatest(" + ", ".join(quote(s) for s in plan.stamps) + ")"
    columns = ", ".join(quote(c.path) for c in plan.columns)
    stamp = _naive_utc(extracted_at)
    if window is None:
        sql = f"""
            SELECT {columns}, _version_stamp, '{WHOLE}' AS _partition,
                   ?::TIMESTAMP AS _extracted_at
            FROM (SELECT *, {version} AS _version_stamp FROM {source})
            """
        return sql, [stamp, *params]
    sql = f"""
        SELECT {columns}, _version_stamp,
               strftime(greatest(_version_stamp, ?::TIMESTAMP), '%Y-%m-%d') AS _partition,
               ?::TIMESTAMP AS _extracted_at
        FROM (SELECT *, {version} AS _version_stamp FROM {source})
        WHERE _version_stamp >= ?::TIMESTAMP AND _version_stamp < ?::TIMESTAMP
    """
    bounds = [_naive_utc(window.start - overlap), _naive_utc(window.end)]
    return sql, [_naive_utc(window.start), stamp, *params, *bounds]


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """DuckDB TIMESTAMP columns hold UTC wall time."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)

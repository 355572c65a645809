"""The catalog: one view per table over its partition files, rebuilt from the data directory.

The catalog file is never opened for writing in place: a DuckDB file admits one read-write
process or many read-only ones, and an analyst's read-only session would block a writer. Instead
it is built under a temporary name and renamed over the old one. An open read-only session keeps
the old inode (whose views read the same file globs); new sessions open the new file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.warehouse import files
from pipeline.warehouse.sql import identifier, literal
from pipeline.warehouse.tables import SCHEMAS, Table, is_identifier

log = logging.getLogger(__name__)

SPEC_FILE = "_table.json"
PARQUET_GLOB = "*.parquet"
# A table's columns as its latest write left them, in a file of no rows that the view's glob
# reads with the partitions ('@' is in no partition key), so that partitions without rows need
# no file and a table whose partitions are all empty still has its view.
COLUMNS_FILE = "@columns.parquet"
# The partitions written, with rows or without (a file holds only those with rows).
LEDGER_FILE = "_partitions.json"


class CatalogError(RuntimeError):
    """Some views could not be created; the catalog holds every other view."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        details = "; ".join(f"{name}: {error}" for name, error in sorted(failures.items()))
        super().__init__(f"views not created: {details}")


@dataclass(frozen=True)
class View:
    """A table that has at least one partition file, and the glob its view reads."""

    table: Table
    glob: Path

    def sql(self) -> str:
        source = f"read_parquet({literal(str(self.glob))}, union_by_name = true)"
        table = self.table
        if not table.latest_by:
            return f"SELECT * FROM {source}"
        key = ", ".join(identifier(column) for column in table.latest_by)
        order = ", ".join(f"{identifier(column)} DESC NULLS LAST" for column in table.order_by)
        return (
            "SELECT * EXCLUDE (_rank) FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS _rank "
            f"FROM {source}) WHERE _rank = 1"
        )

    def ddl(self) -> str:
        name = self.table.sql
        return f"CREATE OR REPLACE VIEW {name} AS {self.sql()}"


def read_spec(table_dir: Path, schema: str) -> Table:
    """The table stored in `table_dir`, with its view spec if one was recorded."""
    default = Table(schema, table_dir.name)
    try:
        spec = json.loads((table_dir / SPEC_FILE).read_text())
    except FileNotFoundError:
        return default
    table = Table.from_spec(spec)
    if (table.schema, table.name) != (schema, table_dir.name):
        raise ValueError(f"{table_dir / SPEC_FILE} describes {table.qualified}")
    return table


def discover(data_dir: Path) -> list[View]:
    """Every table under `data_dir` with at least one partition file (an empty glob fails)."""
    views: list[View] = []
    for schema in SCHEMAS:
        schema_dir = data_dir / schema
        if not schema_dir.is_dir():
            continue
        for table_dir in sorted(schema_dir.iterdir()):
            if not (table_dir.is_dir() and is_identifier(table_dir.name)):
                continue
            if any(path.is_file() for path in table_dir.glob(PARQUET_GLOB)):
                views.append(View(read_spec(table_dir, schema), table_dir / PARQUET_GLOB))
    return views


def create_views(con: duckdb.DuckDBPyConnection, data_dir: Path) -> dict[str, str]:
    """Create the schemas and one view per table in `con`; return the views that failed.

    One broken table (say, a `latest_by` column missing from its files) must not hide the others.
    """
    return _create(con, discover(data_dir))


def _create(con: duckdb.DuckDBPyConnection, views: list[View]) -> dict[str, str]:
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {identifier(schema)}")
    failures: dict[str, str] = {}
    for view in views:
        try:
            con.execute(view.ddl())
        except duckdb.Error as error:
            failures[view.table.qualified] = str(error)
    return failures


def read_ledger(table_dir: Path) -> dict[str, float]:
    """Each partition written, with when (seconds since the epoch)."""
    try:
        return dict(json.loads((table_dir / LEDGER_FILE).read_text()))
    except FileNotFoundError:
        return {}


def add_to_ledger(lock_path: Path, table_dir: Path, partitions: list[str]) -> None:
    """Record `partitions` as written now (under the warehouse lock: writers of one table with
    different file prefixes may record at once)."""
    now = round(time.time(), 3)
    with exclusive(lock_path):
        held = read_ledger(table_dir)
        files.write_json_atomically(table_dir / LEDGER_FILE, held | dict.fromkeys(partitions, now))


def remove_from_ledger(lock_path: Path, table_dir: Path, partition: str) -> None:
    with exclusive(lock_path):
        held = read_ledger(table_dir)
        if held.pop(partition, None) is not None:
            files.write_json_atomically(table_dir / LEDGER_FILE, held)


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold the warehouse lock: catalog rebuilds in different processes take turns.

    Without it, two writers could each build from a listing that misses the other's new table,
    and the later rename would drop a view. The lock file itself is never removed.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def rebuild(
    catalog_path: Path, lock_path: Path, data_dir: Path, changed: Table | None = None
) -> dict[str, str]:
    """Rebuild the catalog file from the data directory; return the views that failed.

    With `changed`, the catalog as it stands is copied and only that table's view is made again
    (binding a view reads every file's footer, and a run writes dozens of tables), unless the
    copy's views are not those of the tables with files (a table new or gone, a writer that died
    before its rebuild): then every view is made again.
    """
    with exclusive(lock_path):
        for stale in catalog_path.parent.glob(f".{catalog_path.name}.tmp-*"):
            stale.unlink(missing_ok=True)
        views = discover(data_dir)
        with files.atomic_target(catalog_path) as temp:
            failures = None
            if changed is not None and catalog_path.is_file():
                shutil.copyfile(catalog_path, temp)
                failures = _replace_view(temp, views, changed)
            if failures is None:
                temp.unlink(missing_ok=True)
                failures = _build(temp, views)
    for name, error in failures.items():
        log.warning("catalog: no view for %s: %s", name, error)
    return failures


def _build(path: Path, views: list[View]) -> dict[str, str]:
    con = duckdb.connect(str(path))
    try:
        failures = _create(con, views)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return failures


def _replace_view(path: Path, views: list[View], changed: Table) -> dict[str, str] | None:
    """Make `changed`'s view again in the catalog copy at `path`; None if the copy's views are
    not those of `views`."""
    con = duckdb.connect(str(path))
    try:
        held = set(
            con.execute(
                "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        )
        if held != {(view.table.schema, view.table.name) for view in views}:
            return None
        failures = _create(con, [v for v in views if v.table.qualified == changed.qualified])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return failures

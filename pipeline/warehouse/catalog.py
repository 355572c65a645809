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
    for schema in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {identifier(schema)}")
    failures: dict[str, str] = {}
    for view in discover(data_dir):
        try:
            con.execute(view.ddl())
        except duckdb.Error as error:
            failures[view.table.qualified] = str(error)
    return failures


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


def rebuild(catalog_path: Path, lock_path: Path, data_dir: Path) -> dict[str, str]:
    """Rebuild the catalog file from the data directory; return the views that failed."""
    with exclusive(lock_path):
        for stale in catalog_path.parent.glob(f".{catalog_path.name}.tmp-*"):
            stale.unlink(missing_ok=True)
        with files.atomic_target(catalog_path) as temp:
            con = duckdb.connect(str(temp))
            try:
                failures = create_views(con, data_dir)
                con.execute("CHECKPOINT")
            finally:
                con.close()
    for name, error in failures.items():
        log.warning("catalog: no view for %s: %s", name, error)
    return failures

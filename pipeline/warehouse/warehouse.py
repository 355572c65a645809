"""The warehouse: immutable Parquet files per partition, and a catalog of views over them.

Writers never wait on readers or on each other: each partition is its own file, replaced by a
rename, and the catalog an analyst opens read-only is rebuilt beside the live one and renamed
over it under a lock that only writers take.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

import duckdb

from pipeline.warehouse import catalog, files
from pipeline.warehouse.sql import identifier, literal
from pipeline.warehouse.tables import Table, check_partition

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path(".m3sync")
CATALOG_FILE = "warehouse.duckdb"
LOCK_FILE = "warehouse.lock"
_GLOB_CHARACTERS = frozenset("*?[]{}")


class Warehouse:
    """Partition files under `root/data/<schema>/<table>/<partition>.parquet`, views in the catalog.

    `root` is made absolute, so the views' file globs work from any working directory.
    """

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.root = Path(root).resolve()
        if _GLOB_CHARACTERS & set(str(self.root)):
            raise ValueError(f"warehouse root must not contain glob characters: {self.root}")
        self.data_dir = self.root / "data"
        self.catalog_path = self.root / CATALOG_FILE
        self.lock_path = self.root / LOCK_FILE

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r})"

    def table_dir(self, table: Table) -> Path:
        return self.data_dir / table.schema / table.name

    def partition_path(self, table: Table, partition: str) -> Path:
        return self.table_dir(table) / f"{check_partition(partition)}.parquet"

    def partitions(self, table: Table) -> list[str]:
        """The partitions of `table` written so far, with rows or without: those its ledger
        names and those with a file (temporary files are not partitions)."""
        directory = self.table_dir(table)
        if not directory.is_dir():
            return []
        files = {
            path.stem
            for path in directory.glob(catalog.PARQUET_GLOB)
            if path.is_file() and path.name != catalog.COLUMNS_FILE
        }
        return sorted(files | set(catalog.read_ledger(directory)))

    def written_at(self, table: Table, partition: str) -> float:
        """When `partition` was last written (seconds since the epoch)."""
        held = catalog.read_ledger(self.table_dir(table))
        if partition in held:
            return held[partition]
        return self.partition_path(table, partition).stat().st_mtime  # written before ledgers

    def partition_files(self, table: Table, keys: Sequence[str]) -> tuple[list[Path], list[str]]:
        """The files of those of `keys` that hold rows (the table's columns file when none does,
        so that a read of empty partitions still has the columns), and the keys never written."""
        written = set(self.partitions(table))
        missing = [key for key in keys if key not in written]
        found = [
            path for path in map(lambda k: self.partition_path(table, k), keys) if path.is_file()
        ]
        return found or [self.table_dir(table) / catalog.COLUMNS_FILE], missing

    def write_partition(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        partition: str,
        query: str,
        params: Sequence[object] = (),
    ) -> int:
        """Replace one partition of `table` with the rows of `query`; return the row count.

        The file is written under a temporary name, fsynced and renamed into place, so readers
        see the old partition or the new one. An empty result leaves no file (and removes an
        older one): the partition is in the table's ledger, and its columns in the table's
        columns file, so that empty partitions cost nothing to read.
        """
        return self.write_partition_groups(con, table, [(query, params)], None, cover=[partition])[
            partition
        ]

    def write_partitions(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        query: str,
        params: Sequence[object],
        partition_column: str,
        cover: Sequence[str] = (),
        file_prefix: str = "",
    ) -> dict[str, int]:
        """Split the rows of `query` into one partition file per value of `partition_column`.

        For a run over a range of partitions: the query runs once, each file is replaced
        atomically as in `write_partition`, and the catalog is rebuilt once at the end. Values
        are compared as text (a DATE gives '2026-11-20'). Partitions named in `cover` get a file
        even when no row falls in them, so a range that now holds nothing replaces older data;
        a row outside a non-empty `cover` is an error, raised before any file is written.
        Files are named `<file_prefix><value>.parquet`, so that several writers (one per
        `file_prefix`) can share a table and each replace only its own partitions.
        """
        return self.write_partition_groups(
            con, table, [(query, params)], partition_column, cover, file_prefix
        )

    def write_partition_groups(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        groups: Sequence[tuple[str, Sequence[object]]],
        partition_column: str | None,
        cover: Sequence[str] = (),
        file_prefix: str = "",
    ) -> dict[str, int]:
        """`write_partitions` for rows that come as several queries, each holding whole partitions
        (with no `partition_column`, every row is in the one partition `cover` names).

        Each query is a COPY of its own, so DuckDB holds one group's rows at a time: a partitioned
        COPY keeps a partition's rows in memory until it has `partitioned_write_flush_threshold`
        of them or the COPY ends, which for many small partitions is every row it was given.
        The files of all groups are staged together and placed only when every group is
        written, with one catalog rebuild, exactly as `write_partitions` does for one query
        (a partition that two groups both produce is merged from its pieces).
        """
        if not groups:
            raise ValueError(f"{table.qualified}: no query to write")
        expected = {check_partition(key) for key in cover}
        if partition_column is None and len(expected) != 1:
            raise ValueError(f"{table.qualified}: name the one partition the rows are in")
        self._prepare(table)
        for query, params in groups:
            self._check_columns(con, table, f"SELECT * FROM ({query})", params)
        directory = self.table_dir(table)
        with files.staging_directory(directory, "partitions") as split:
            for number, (query, params) in enumerate(groups):
                if partition_column is None:
                    (key,) = expected
                    target = split / f"p={key}" / f"{number}.parquet"
                    target.parent.mkdir(exist_ok=True)
                    con.execute(
                        f"COPY ({query}) TO {literal(str(target))} (FORMAT parquet)", list(params)
                    )
                    continue
                # APPEND names each file uniquely, so later groups never overwrite earlier ones.
                con.execute(
                    f"COPY ({query}) TO {literal(str(split))} (FORMAT parquet, "
                    f"PARTITION_BY ({identifier(partition_column)}), "
                    "WRITE_PARTITION_COLUMNS true, APPEND)",
                    list(params),
                )
            rows = self._row_counts(con, split)
            produced = {
                key: [part for part in parts if rows[str(part)]]
                for key, parts in self._produced(split).items()
            }
            produced = {key: parts for key, parts in produced.items() if parts}
            if None in produced:
                raise ValueError(f"{table.qualified}: {partition_column} is NULL in some rows")
            keys = {check_partition(key) for key in produced}
            if expected and not keys <= expected:
                outside = ", ".join(sorted(keys - expected))
                raise ValueError(
                    f"{table.qualified}: rows outside the covered partitions: {outside}"
                )
            # The columns of the latest write, which keep the view whole when no partition
            # holds a row; a partition without rows has no file.
            query, params = groups[0]
            with files.atomic_target(directory / catalog.COLUMNS_FILE) as temp:
                con.execute(
                    f"COPY (SELECT * FROM ({query}) LIMIT 0) TO {literal(str(temp))} "
                    "(FORMAT parquet)",
                    list(params),
                )
            counts = {key: 0 for key in expected - keys}
            for key in sorted(keys):
                target = self.partition_path(table, file_prefix + key)
                counts[key] = self._place(con, table, target, produced[key], rows)
            for key in expected - keys:
                self.partition_path(table, file_prefix + key).unlink(missing_ok=True)
            files.fsync_dir(directory)
            catalog.add_to_ledger(self.lock_path, directory, [file_prefix + k for k in counts])
        self._refresh_for(table)
        return dict(sorted(counts.items()))

    def delete_partition(self, table: Table, partition: str) -> None:
        """Remove one partition file (if present) and rebuild the catalog without it."""
        path = self.partition_path(table, partition)
        catalog.remove_from_ledger(self.lock_path, path.parent, partition)
        path.unlink(missing_ok=True)
        if not self.partitions(table):  # the last one: the table goes, as if never written
            (path.parent / catalog.COLUMNS_FILE).unlink(missing_ok=True)
        if path.parent.is_dir():
            files.fsync_dir(path.parent)
        self.refresh_catalog()

    def refresh_catalog(self) -> None:
        """Rebuild the catalog file from the data directory; raise if any view failed.

        The views that could be created are in place even when this raises.
        """
        failures = catalog.rebuild(self.catalog_path, self.lock_path, self.data_dir)
        if failures:
            raise catalog.CatalogError(failures)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory connection with the catalog's schemas and views, for transforms.

        It reads the partition files directly and never opens the catalog file, so it neither
        waits for nor blocks anyone; `COPY` from it into `write_partition` as usual.
        """
        con = duckdb.connect()
        failures = catalog.create_views(con, self.data_dir)
        if failures:
            con.close()
            raise catalog.CatalogError(failures)
        return con

    def _prepare(self, table: Table) -> None:
        """Record the table's view spec and clear temporary files left by killed writers."""
        directory = self.table_dir(table)
        directory.mkdir(parents=True, exist_ok=True)
        files.write_json_atomically(directory / catalog.SPEC_FILE, table.spec())
        for stale in files.sweep_temp_files(directory):
            log.info("removed %s, left by a writer that did not finish", stale)

    @staticmethod
    def _produced(split: Path) -> dict[str | None, list[Path]]:
        """The files `COPY ... PARTITION_BY` wrote, by partition value (None for NULL)."""
        produced: dict[str | None, list[Path]] = {}
        for folder in split.iterdir():
            value = unquote(folder.name.partition("=")[2])
            key = None if value == "__HIVE_DEFAULT_PARTITION__" else value
            produced.setdefault(key, []).extend(sorted(folder.glob("*.parquet")))
        return produced

    @staticmethod
    def _row_counts(con: duckdb.DuckDBPyConnection, split: Path) -> dict[str, int]:
        """Rows per written file, from the Parquet footers alone."""
        written = [str(path) for path in split.glob("*/*.parquet")]
        if not written:
            return {}
        found = con.execute(
            "SELECT file_name, num_rows FROM parquet_file_metadata(?)", [written]
        ).fetchall()
        return {str(name): int(rows) for name, rows in found}

    def _place(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        target: Path,
        parts: list[Path],
        rows: dict[str, int],
    ) -> int:
        """Put a partition's file into place (several are merged first), atomically."""
        if len(parts) > 1:
            return self._copy(
                con, table, "SELECT * FROM read_parquet(?)", [[str(p) for p in parts]], target
            )
        (part,) = parts
        files.fsync_file(part)
        part.replace(target)
        return rows[str(part)]

    def _check_columns(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        query: str,
        params: Sequence[object] = (),
    ) -> None:
        """Refuse rows the table's view could not read (no `latest_by`/`order_by` columns)."""
        needed = (*table.latest_by, *table.order_by)
        if not needed:
            return
        described = con.execute(f"{query} LIMIT 0", list(params)).description
        columns = {column[0] for column in described}
        missing = [column for column in needed if column not in columns]
        if missing:
            raise ValueError(
                f"{table.qualified}: latest_by/order_by columns missing from the "
                f"query: {', '.join(missing)}"
            )

    def _copy(
        self,
        con: duckdb.DuckDBPyConnection,
        table: Table,
        query: str,
        params: Sequence[object],
        path: Path,
    ) -> int:
        """COPY `query` into `path` atomically; refuse files the table's view could not read."""
        with files.atomic_target(path) as temp:
            (count,) = con.execute(
                f"COPY ({query}) TO {literal(str(temp))} (FORMAT parquet)", list(params)
            ).fetchone() or (0,)
            self._check_columns(con, table, f"SELECT * FROM read_parquet({literal(str(temp))})")
        return int(count)

    def _refresh_for(self, table: Table) -> None:
        """Rebuild the catalog; only this table's failure is the writer's problem.

        Another table's broken view is logged by the rebuild and left for its own writer.
        """
        failures = catalog.rebuild(self.catalog_path, self.lock_path, self.data_dir, table)
        if table.qualified in failures:
            raise catalog.CatalogError({table.qualified: failures[table.qualified]})

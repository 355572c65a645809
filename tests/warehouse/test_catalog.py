"""The catalog is rebuilt from the data directory alone: one view per table that has files."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse import CatalogError, Table, Warehouse
from pipeline.warehouse.catalog import SPEC_FILE, View, create_views


def views(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal"
    ).fetchall()
    return {row[0] for row in rows}


def test_every_schema_exists_even_with_no_data(tmp_path: Path):
    con = duckdb.connect()
    create_views(con, tmp_path / "data")
    schemas = {row[0] for row in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert {"raw", "staged", "load"} <= schemas


def test_table_without_partition_files_gets_no_view(tmp_path: Path):
    (tmp_path / "data" / "raw" / "order_item").mkdir(parents=True)
    con = duckdb.connect()
    assert create_views(con, tmp_path / "data") == {}
    assert views(con) == set()


def test_view_spec_is_read_back_from_the_data_directory(tmp_path: Path):
    warehouse = Warehouse(tmp_path)
    table = Table("raw", "order_item", latest_by=("Id",), order_by=("v",))
    warehouse.write_partition(duckdb.connect(), table, "_all", "SELECT 'a' AS \"Id\", 1 AS v")
    spec = json.loads((warehouse.table_dir(table) / SPEC_FILE).read_text())
    assert Table.from_spec(spec) == table


def test_latest_view_orders_by_every_order_column_descending(tmp_path: Path):
    table = Table("raw", "t", latest_by=("Id",), order_by=("a", "b"))
    sql = View(table, tmp_path / "*.parquet").sql()
    assert 'ORDER BY "a" DESC NULLS LAST, "b" DESC NULLS LAST' in sql
    assert 'PARTITION BY "Id"' in sql


def test_broken_view_does_not_hide_the_other_tables(tmp_path: Path):
    warehouse = Warehouse(tmp_path)
    con = duckdb.connect()
    good = Table("raw", "good")
    broken = Table("raw", "broken", latest_by=("Id",), order_by=("v",))
    warehouse.write_partition(con, good, "_all", "SELECT 1 AS x")
    warehouse.write_partition(con, broken, "_all", "SELECT 'a' AS \"Id\", 1 AS v")
    spec = broken.spec() | {"latest_by": ["missing"]}
    (warehouse.table_dir(broken) / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(CatalogError, match=r"raw\.broken"):
        warehouse.refresh_catalog()
    catalog = duckdb.connect(str(warehouse.catalog_path), read_only=True)
    try:
        assert views(catalog) == {"raw.good"}
    finally:
        catalog.close()


def test_refresh_leaves_no_temporary_catalog_behind(tmp_path: Path):
    warehouse = Warehouse(tmp_path)
    warehouse.write_partition(duckdb.connect(), Table("raw", "t"), "_all", "SELECT 1 AS x")
    warehouse.refresh_catalog()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "data",
        "warehouse.duckdb",
        "warehouse.lock",
    ]


def _view_sql(warehouse: Warehouse, name: str) -> str:
    con = duckdb.connect(str(warehouse.catalog_path), read_only=True)
    try:
        (sql,) = con.execute(
            "SELECT sql FROM duckdb_views() WHERE schema_name || '.' || view_name = ?", [name]
        ).fetchone() or ("",)
    finally:
        con.close()
    return sql


def test_a_write_makes_only_its_own_tables_view_again(tmp_path: Path):
    warehouse = Warehouse(tmp_path)
    con = duckdb.connect()
    warehouse.write_partition(con, Table("raw", "a"), "_all", "SELECT 1 AS x")
    warehouse.write_partition(con, Table("raw", "b"), "_all", "SELECT 2 AS y")
    catalog = duckdb.connect(str(warehouse.catalog_path))
    catalog.execute("CREATE OR REPLACE VIEW raw.b AS SELECT 42 AS marked")
    catalog.close()
    warehouse.write_partition(con, Table("raw", "a"), "_all", "SELECT 3 AS x")
    assert "marked" in _view_sql(warehouse, "raw.b")


def test_a_table_the_catalog_lacks_makes_the_next_rebuild_whole(tmp_path: Path):
    warehouse = Warehouse(tmp_path)
    con = duckdb.connect()
    warehouse.write_partition(con, Table("raw", "a"), "_all", "SELECT 1 AS x")
    orphan = warehouse.data_dir / "raw" / "b" / "_all.parquet"
    orphan.parent.mkdir(parents=True)
    con.execute(f"COPY (SELECT 2 AS y) TO '{orphan}' (FORMAT parquet)")  # a writer that died
    warehouse.write_partition(con, Table("raw", "a"), "_all", "SELECT 3 AS x")
    assert "read_parquet" in _view_sql(warehouse, "raw.b")

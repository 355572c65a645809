"""Partitions replaced atomically, a catalog analysts can hold open, writers that never clash."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from pipeline.warehouse import UNPARTITIONED, CatalogError, Table, Warehouse

ORDER_ITEM = Table("raw", "order_item")
VERSIONED = Table(
    "raw", "order_item", latest_by=("Id",), order_by=("SystemModstamp", "_extracted_at")
)
ROWS = "SELECT * FROM (VALUES ('a', 1), ('b', 2)) AS t(\"Id\", n)"

ANALYST = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
count = lambda: con.execute("SELECT count(*) FROM raw.order_item").fetchone()[0]
print(count(), flush=True)
sys.stdin.readline()
print(count(), flush=True)
con.close()
"""

WRITER = """
import sys, duckdb
from pathlib import Path
from pipeline.warehouse import Table, Warehouse
warehouse, own, days = Warehouse(Path(sys.argv[1])), sys.argv[2], sys.argv[3:]
con = duckdb.connect()
for day in days:
    warehouse.write_partition(con, Table("raw", "shared"), day, "SELECT ? AS writer", [own])
    warehouse.write_partition(con, Table("raw", own), day, "SELECT ? AS day", [day])
"""

KILLED_WRITER = """
import os, signal, sys, duckdb
from pathlib import Path
from pipeline.warehouse import Table, Warehouse
from pipeline.warehouse.files import atomic_target
from pipeline.warehouse.sql import literal
path = Warehouse(Path(sys.argv[1])).partition_path(Table("raw", "order_item"), "2026-11-21")
with atomic_target(path) as temp:
    ghost = "SELECT 'ghost' AS \\"Id\\", 0 AS n"
    duckdb.execute(f"COPY ({ghost}) TO {literal(str(temp))} (FORMAT parquet)")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "wh")


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def catalog_query(warehouse: Warehouse, sql: str) -> list[tuple]:
    """What an analyst running `duckdb -readonly warehouse.duckdb` would see."""
    catalog = duckdb.connect(str(warehouse.catalog_path), read_only=True)
    try:
        return catalog.execute(sql).fetchall()
    finally:
        catalog.close()


def temp_files(warehouse: Warehouse) -> list[Path]:
    return [path for path in warehouse.root.rglob("*") if ".tmp-" in path.name]


def write_day(warehouse: Warehouse, con, day: str, ids: str = "'a'") -> int:
    return warehouse.write_partition(
        con, ORDER_ITEM, day, f'SELECT unnest([{ids}]) AS "Id", ? AS _partition', [day]
    )


def test_partition_write_creates_a_file_and_a_view(warehouse, con):
    assert warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", ROWS) == 2
    assert warehouse.partition_path(ORDER_ITEM, "2026-11-20").is_file()
    assert catalog_query(warehouse, 'SELECT "Id", n FROM raw.order_item ORDER BY 1') == [
        ("a", 1),
        ("b", 2),
    ]


def test_partition_file_lives_under_data_schema_table(warehouse):
    path = warehouse.partition_path(ORDER_ITEM, "2026-11-20")
    assert path == warehouse.root / "data" / "raw" / "order_item" / "2026-11-20.parquet"
    assert warehouse.catalog_path == warehouse.root / "warehouse.duckdb"


def test_query_parameters_reach_the_query(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "_all", "SELECT ? AS s, ? AS n", ["it's", 7])
    assert catalog_query(warehouse, "SELECT s, n FROM raw.order_item") == [("it's", 7)]


def test_rewrite_replaces_the_partition_and_leaves_no_temporary_file(warehouse, con):
    write_day(warehouse, con, "2026-11-20", "'old1', 'old2'")
    assert write_day(warehouse, con, "2026-11-20", "'new'") == 1
    assert catalog_query(warehouse, 'SELECT "Id" FROM raw.order_item') == [("new",)]
    assert warehouse.partitions(ORDER_ITEM) == ["2026-11-20"]
    assert temp_files(warehouse) == []


def test_rewrite_leaves_other_partitions_alone(warehouse, con):
    write_day(warehouse, con, "2026-11-20", "'a'")
    write_day(warehouse, con, "2026-11-21", "'b'")
    write_day(warehouse, con, "2026-11-21", "'c'")
    rows = catalog_query(warehouse, 'SELECT _partition, "Id" FROM raw.order_item ORDER BY 1')
    assert rows == [("2026-11-20", "a"), ("2026-11-21", "c")]


def test_latest_by_view_keeps_only_the_latest_version_per_key(warehouse, con):
    versions = """SELECT * FROM (VALUES
        ('a', 1, 1, 'a-old'), ('a', 3, 1, 'a-new'), ('a', 2, 9, 'a-mid'),
        ('b', 5, 1, 'b-first'), ('b', 5, 2, 'b-later-extract'), ('c', NULL, 1, 'c-null')
    ) AS t("Id", "SystemModstamp", "_extracted_at", label)"""
    warehouse.write_partition(con, VERSIONED, "2026-11-20", versions)
    rows = catalog_query(warehouse, 'SELECT "Id", label FROM raw.order_item ORDER BY 1')
    assert rows == [("a", "a-new"), ("b", "b-later-extract"), ("c", "c-null")]


def test_latest_by_picks_across_partitions(warehouse, con):
    query = 'SELECT \'a\' AS "Id", ? AS "SystemModstamp", 0 AS _extracted_at, ? AS label'
    warehouse.write_partition(con, VERSIONED, "2026-11-21", query, [2, "newer"])
    warehouse.write_partition(con, VERSIONED, "2026-11-20", query, [1, "older"])
    assert catalog_query(warehouse, "SELECT label FROM raw.order_item") == [("newer",)]


def test_latest_by_view_has_no_rank_column(warehouse, con):
    query = 'SELECT \'a\' AS "Id", 1 AS "SystemModstamp", 0 AS _extracted_at'
    warehouse.write_partition(con, VERSIONED, "_all", query)
    columns = catalog_query(warehouse, "SELECT column_name FROM (DESCRIBE raw.order_item)")
    assert [c[0] for c in columns] == ["Id", "SystemModstamp", "_extracted_at"]


def test_latest_by_column_missing_from_the_query_is_refused_and_leaves_no_file(warehouse, con):
    with pytest.raises(ValueError, match="SystemModstamp"):
        warehouse.write_partition(con, VERSIONED, "_all", "SELECT 'a' AS \"Id\"")
    assert warehouse.partitions(VERSIONED) == []
    assert temp_files(warehouse) == []


def test_later_partition_with_an_extra_column_is_unioned_by_name(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", "SELECT 'a' AS \"Id\", 1 AS n")
    warehouse.write_partition(
        con, ORDER_ITEM, "2026-11-21", "SELECT 'x' AS extra, 2 AS n, 'b' AS \"Id\""
    )
    rows = catalog_query(warehouse, 'SELECT "Id", n, extra FROM raw.order_item ORDER BY 1')
    assert rows == [("a", 1, None), ("b", 2, "x")]


def test_unpartitioned_table_is_one_all_partition(warehouse, con):
    product = Table("raw", "product2")
    warehouse.write_partition(con, product, UNPARTITIONED, "SELECT 'p1' AS \"Id\"")
    warehouse.write_partition(con, product, UNPARTITIONED, "SELECT 'p2' AS \"Id\"")
    assert warehouse.partitions(product) == ["_all"]
    assert catalog_query(warehouse, 'SELECT "Id" FROM raw.product2') == [("p2",)]


def test_empty_result_writes_an_empty_partition_with_the_querys_columns(warehouse, con):
    assert warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", f"{ROWS} WHERE false") == 0
    assert warehouse.partitions(ORDER_ITEM) == ["2026-11-20"]
    columns = catalog_query(warehouse, "SELECT column_name FROM (DESCRIBE raw.order_item)")
    assert [c[0] for c in columns] == ["Id", "n"]
    assert catalog_query(warehouse, "SELECT count(*) FROM raw.order_item") == [(0,)]


def test_empty_result_replaces_an_older_non_empty_partition(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", ROWS)
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", f"{ROWS} WHERE false")
    assert catalog_query(warehouse, "SELECT count(*) FROM raw.order_item") == [(0,)]


def test_write_partitions_writes_one_file_per_value(warehouse, con):
    query = "SELECT range AS n, DATE '2026-11-20' + (range % 3)::INT AS day FROM range(?)"
    counts = warehouse.write_partitions(con, ORDER_ITEM, query, [7], "day")
    assert counts == {"2026-11-20": 3, "2026-11-21": 2, "2026-11-22": 2}
    assert warehouse.partitions(ORDER_ITEM) == list(counts)
    assert catalog_query(warehouse, "SELECT count(*), sum(n) FROM raw.order_item") == [(7, 21)]


def test_write_partitions_writes_empty_files_for_covered_partitions_without_rows(warehouse, con):
    write_day(warehouse, con, "2026-11-21", "'stale'")
    query = "SELECT 'a' AS \"Id\", ? AS _partition"
    counts = warehouse.write_partitions(
        con, ORDER_ITEM, query, ["2026-11-20"], "_partition", cover=["2026-11-20", "2026-11-21"]
    )
    assert counts == {"2026-11-20": 1, "2026-11-21": 0}
    assert catalog_query(warehouse, 'SELECT "Id" FROM raw.order_item') == [("a",)]


def test_write_partitions_refuses_rows_outside_the_cover_before_writing(warehouse, con):
    with pytest.raises(ValueError, match="2026-11-25"):
        warehouse.write_partitions(
            con, ORDER_ITEM, "SELECT '2026-11-25' AS p", [], "p", cover=["2026-11-20"]
        )
    assert warehouse.partitions(ORDER_ITEM) == []


def test_write_partitions_refuses_values_that_are_not_partition_keys(warehouse, con):
    with pytest.raises(ValueError, match="partition key"):
        warehouse.write_partitions(con, ORDER_ITEM, "SELECT '../../etc' AS p", [], "p")
    assert not warehouse.data_dir.joinpath("etc").exists()


@pytest.mark.parametrize("partition", ["../x", "a/b", "..", ".x", "*"])
def test_bad_partition_keys_are_refused_before_any_file_is_touched(warehouse, con, partition):
    with pytest.raises(ValueError, match="partition key"):
        warehouse.write_partition(con, ORDER_ITEM, partition, ROWS)
    assert not warehouse.root.exists()


def test_root_with_glob_characters_is_refused(tmp_path):
    with pytest.raises(ValueError, match="glob"):
        Warehouse(tmp_path / "wh[1]")


def test_root_with_a_quote_in_its_path_still_gets_working_views(tmp_path, con):
    warehouse = Warehouse(tmp_path / "it's here")
    warehouse.write_partition(con, ORDER_ITEM, "_all", ROWS)
    assert catalog_query(warehouse, "SELECT count(*) FROM raw.order_item") == [(2,)]


def test_views_work_from_any_working_directory(tmp_path, con, monkeypatch):
    monkeypatch.chdir(tmp_path)
    warehouse = Warehouse(Path(".m3sync"))
    warehouse.write_partition(con, ORDER_ITEM, "_all", ROWS)
    monkeypatch.chdir("/")
    assert catalog_query(warehouse, "SELECT count(*) FROM raw.order_item") == [(2,)]


def test_delete_partition_removes_its_rows_from_the_view(warehouse, con):
    write_day(warehouse, con, "2026-11-20", "'a'")
    write_day(warehouse, con, "2026-11-21", "'b'")
    warehouse.delete_partition(ORDER_ITEM, "2026-11-20")
    assert warehouse.partitions(ORDER_ITEM) == ["2026-11-21"]
    assert catalog_query(warehouse, 'SELECT "Id" FROM raw.order_item') == [("b",)]


def test_deleting_the_last_partition_drops_the_view(warehouse, con):
    write_day(warehouse, con, "2026-11-20")
    warehouse.delete_partition(ORDER_ITEM, "2026-11-20")
    views = catalog_query(warehouse, "SELECT view_name FROM duckdb_views() WHERE NOT internal")
    assert views == []


def test_refresh_catalog_rebuilds_views_from_the_data_directory_alone(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "_all", ROWS)
    warehouse.catalog_path.unlink()
    Warehouse(warehouse.root).refresh_catalog()
    assert catalog_query(warehouse, "SELECT count(*) FROM raw.order_item") == [(2,)]


def test_connect_sees_the_same_data_as_the_catalog(warehouse, con):
    query = 'SELECT \'a\' AS "Id", ? AS "SystemModstamp", 0 AS _extracted_at'
    warehouse.write_partition(con, VERSIONED, "2026-11-20", query, [1])
    warehouse.write_partition(con, VERSIONED, "2026-11-21", query, [2])
    warehouse.write_partition(con, Table("staged", "accounts"), "_all", "SELECT 'acc' AS code")
    sql = (
        'SELECT (SELECT list("SystemModstamp") FROM raw.order_item), '
        "(SELECT list(code) FROM staged.accounts)"
    )
    transform = warehouse.connect()
    try:
        assert transform.execute(sql).fetchall() == catalog_query(warehouse, sql)
    finally:
        transform.close()


def test_connect_has_every_schema_and_never_opens_the_catalog_file(warehouse):
    transform = warehouse.connect()
    try:
        schemas = transform.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()
    finally:
        transform.close()
    assert {"raw", "staged", "load"} <= {row[0] for row in schemas}
    assert not warehouse.catalog_path.exists()


def test_connect_can_copy_from_views_into_another_table(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", ROWS)
    transform = warehouse.connect()
    try:
        staged = Table("staged", "accounts")
        query = 'SELECT "Id" AS code FROM raw.order_item'
        assert warehouse.write_partition(transform, staged, "2026-11-20", query) == 2
    finally:
        transform.close()
    assert catalog_query(warehouse, "SELECT count(*) FROM staged.accounts") == [(2,)]


def test_writer_whose_own_view_fails_gets_an_error(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", ROWS)
    warehouse.partition_path(ORDER_ITEM, "junk").write_text("not parquet")
    with pytest.raises(CatalogError, match=r"raw\.order_item"):
        warehouse.write_partition(con, ORDER_ITEM, "2026-11-21", ROWS)


def test_another_tables_broken_view_does_not_fail_the_writer(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", ROWS)
    warehouse.partition_path(ORDER_ITEM, "junk").write_text("not parquet")
    accounts = Table("staged", "accounts")
    assert warehouse.write_partition(con, accounts, "_all", "SELECT 1 AS n") == 1
    assert catalog_query(warehouse, "SELECT count(*) FROM staged.accounts") == [(1,)]


def test_analyst_session_stays_open_while_partitions_are_written(warehouse, con):
    write_day(warehouse, con, "2026-11-20")
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(warehouse.catalog_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout is not None
        assert analyst.stdout.readline().strip() == "1"
        write_day(warehouse, con, "2026-11-21")
        write_day(warehouse, con, "2026-11-22")
        warehouse.write_partition(con, Table("staged", "accounts"), "_all", "SELECT 1 AS n")
        warehouse.refresh_catalog()
        new_session = catalog_query(
            warehouse,
            "SELECT (SELECT list(DISTINCT _partition ORDER BY _partition) FROM raw.order_item), "
            "(SELECT count(*) FROM staged.accounts)",
        )
        out, _ = analyst.communicate("go\n", timeout=60)
    finally:
        if analyst.poll() is None:
            analyst.kill()
            analyst.wait()
    assert new_session == [(["2026-11-20", "2026-11-21", "2026-11-22"], 1)]
    assert analyst.returncode == 0
    assert out.strip() == "3"


def test_two_writer_processes_both_end_up_in_the_catalog(warehouse):
    days = [f"2026-11-{day:02d}" for day in range(1, 11)]
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(warehouse.root), name, *chunk])
        for name, chunk in (("alpha", days[:5]), ("beta", days[5:]))
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    rows = catalog_query(
        warehouse,
        "SELECT writer, count(*) FROM raw.shared GROUP BY ALL ORDER BY 1",
    )
    assert rows == [("alpha", 5), ("beta", 5)]
    assert catalog_query(warehouse, "SELECT count(*) FROM raw.alpha") == [(5,)]
    assert catalog_query(warehouse, "SELECT count(*) FROM raw.beta") == [(5,)]
    assert temp_files(warehouse) == []


@pytest.fixture
def killed_writer(warehouse: Warehouse, con) -> Warehouse:
    """A warehouse with one real partition and the leftovers of a writer killed mid-COPY."""
    write_day(warehouse, con, "2026-11-20", "'real'")
    command = [sys.executable, "-c", KILLED_WRITER, str(warehouse.root)]
    process = subprocess.run(command, check=False)
    assert process.returncode == -signal.SIGKILL
    (leftover,) = [path for path in temp_files(warehouse) if not path.name.endswith(".lock")]
    assert duckdb.execute('SELECT "Id" FROM read_parquet(?)', [str(leftover)]).fetchall() == [
        ("ghost",)
    ]
    return warehouse


def test_killed_writers_temporary_file_is_not_visible_through_the_view(killed_writer):
    killed_writer.refresh_catalog()
    assert catalog_query(killed_writer, 'SELECT "Id" FROM raw.order_item') == [("real",)]
    assert killed_writer.partitions(ORDER_ITEM) == ["2026-11-20"]


def test_next_write_to_the_table_cleans_up_a_killed_writers_leftovers(killed_writer, con):
    write_day(killed_writer, con, "2026-11-22", "'next'")
    assert temp_files(killed_writer) == []


def test_write_partitions_refuses_rows_without_a_partition_value(warehouse, con):
    with pytest.raises(ValueError, match="NULL"):
        warehouse.write_partitions(con, ORDER_ITEM, "SELECT NULL::DATE AS day", [], "day")
    assert warehouse.partitions(ORDER_ITEM) == []


def test_write_partitions_with_no_rows_writes_empty_covered_partitions(warehouse, con):
    counts = warehouse.write_partitions(
        con,
        ORDER_ITEM,
        "SELECT 'x' AS \"Id\", DATE '2026-11-20' AS day WHERE false",
        [],
        "day",
        cover=["2026-11-20", "2026-11-21"],
    )
    assert counts == {"2026-11-20": 0, "2026-11-21": 0}
    assert warehouse.partitions(ORDER_ITEM) == ["2026-11-20", "2026-11-21"]


def test_groups_that_share_a_partition_are_merged_into_one_file(warehouse, con):
    table = Table("raw", "grouped")
    groups = [
        ("SELECT 1 AS id, '2024-01-01' AS day UNION ALL SELECT 2, '2024-01-02'", []),
        ("SELECT 3 AS id, '2024-01-02' AS day", []),
    ]
    counts = warehouse.write_partition_groups(
        con, table, groups, "day", cover=["2024-01-01", "2024-01-02", "2024-01-03"]
    )
    assert counts == {"2024-01-01": 1, "2024-01-02": 2, "2024-01-03": 0}
    assert warehouse.partitions(table) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    rows = warehouse.connect().execute("SELECT id FROM raw.grouped ORDER BY id").fetchall()
    assert rows == [(1,), (2,), (3,)]


def test_a_file_prefix_lets_writers_share_a_table(warehouse, con):
    table = Table("staged", "shared")
    warehouse.write_partitions(
        con, table, "SELECT 'a' AS who, '2024-01-01' AS day", [], "day", file_prefix="a."
    )
    warehouse.write_partitions(
        con, table, "SELECT 'b' AS who, '2024-01-01' AS day", [], "day", file_prefix="b."
    )
    assert warehouse.partitions(table) == ["a.2024-01-01", "b.2024-01-01"]


def test_a_partition_without_rows_is_written_but_has_no_file(warehouse, con):
    counts = warehouse.write_partitions(
        con,
        ORDER_ITEM,
        f"SELECT *, DATE '2026-11-20' AS day FROM ({ROWS})",
        [],
        "day",
        cover=["2026-11-20", "2026-11-21"],
    )
    assert counts == {"2026-11-20": 2, "2026-11-21": 0}
    assert warehouse.partitions(ORDER_ITEM) == ["2026-11-20", "2026-11-21"]
    assert not warehouse.partition_path(ORDER_ITEM, "2026-11-21").exists()


def test_a_partition_that_no_longer_holds_rows_loses_its_file(warehouse, con):
    write_day(warehouse, con, "2026-11-20")
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", f"{ROWS} WHERE false")
    assert not warehouse.partition_path(ORDER_ITEM, "2026-11-20").exists()
    assert warehouse.partitions(ORDER_ITEM) == ["2026-11-20"]


def test_a_table_whose_partitions_are_all_empty_keeps_its_view_and_columns(warehouse, con):
    warehouse.write_partition(con, ORDER_ITEM, "2026-11-20", f"{ROWS} WHERE false")
    columns = catalog_query(warehouse, "SELECT column_name FROM (DESCRIBE raw.order_item)")
    assert [c[0] for c in columns] == ["Id", "n"]
    assert warehouse.connect().execute("SELECT count(*) FROM raw.order_item").fetchall() == [(0,)]
